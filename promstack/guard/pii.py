"""Personal data: the recognizers behind masking on the way in and filtering on the way out.

Everything here is pure Python (regular expressions plus checksums: Luhn for cards, the
주민등록번호 check digit, `ipaddress` for IPs), so it runs offline in microseconds. Entity names
follow Presidio's (EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IP_ADDRESS, KR_RRN, ...) and
masks look like Presidio's default replacement, `<EMAIL_ADDRESS>`.

Python's `\\b` treats Hangul as word characters, so `test@example.com으로` has no boundary after
`com`; every pattern uses explicit ASCII look-arounds instead.

Recognizers match a folded copy of the text (`fold`): full-width forms, other scripts' digits,
every dash and every space become their ASCII twins, and zero-width characters go; findings are
mapped back onto the original, so `９００１０１－１２３４５６８` or `010–1234–5678` is masked where
it stands. Input masking and the output filter share this one recognizer set.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from dataclasses import dataclass

ENTITIES = (
    "KR_RRN", "CREDIT_CARD", "EMAIL_ADDRESS", "KR_PHONE", "PHONE_NUMBER", "ACCOUNT_NUMBER",
    "IP_ADDRESS", "API_KEY", "PRIVATE_KEY",
)
OUTPUT_SENSITIVE = ("KR_RRN", "CREDIT_CARD", "ACCOUNT_NUMBER", "API_KEY", "PRIVATE_KEY")


@dataclass(frozen=True)
class Finding:
    entity: str
    start: int
    end: int
    score: float

    def __len__(self) -> int:
        return self.end - self.start


# ---- validators -----------------------------------------------------------------------

def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def rrn_check_ok(digits: str) -> bool:
    """The 13th digit of a 주민등록번호 is (11 - Σ dᵢwᵢ mod 11) mod 10. Numbers issued since
    October 2020 no longer carry it, which is why a hyphenated number with a valid date still
    counts (at a lower score)."""
    total = sum(int(d) * w for d, w in zip(digits[:12], _RRN_WEIGHTS, strict=True))
    return (11 - total % 11) % 10 == int(digits[12])


# ---- folding: the forms people type, onto the forms the patterns know -------------------------

ZERO_WIDTH_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
# Dashes outside Unicode's Pd: the minus signs, and the Hangul vowel ㅡ that Korean keyboards
# turn a dash into when the IME is left on.
_DASH_LIKE = "\u2212\u02d7\u2796\ufe63\u3161"


class _FoldTable(dict):
    """A `str.translate` table filled on first sight of each code point (one dict lookup per
    character afterwards): every character maps to one character, except zero-width ones."""

    def __missing__(self, cp: int) -> int | str | None:
        ch = chr(cp)
        if cp < 128:
            out: int | str | None = cp
        elif ch in ZERO_WIDTH_CHARS:
            out = None
        elif 0xFF01 <= cp <= 0xFF5E:  # full-width ASCII: １２３, －, ＠, ａｂｃ
            out = chr(cp - 0xFEE0)
        else:
            category = unicodedata.category(ch)
            if category == "Nd":
                out = str(unicodedata.decimal(ch))
            elif category == "Pd" or ch in _DASH_LIKE:
                out = "-"
            elif category == "Zs":
                out = " "
            else:
                out = cp
        self[cp] = out
        return out


_FOLD = _FoldTable()


def fold(text: str) -> tuple[str, list[int] | None]:
    """The text the recognizers read, and where each of its characters came from (None when
    every character stayed in place, the common case: nothing but one-for-one replacements)."""
    if text.isascii():
        return text, None
    folded = text.translate(_FOLD)
    if len(folded) == len(text):
        return folded, None
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        out = _FOLD[ord(ch)]
        if out is None:
            continue
        chars.append(out if isinstance(out, str) else ch)
        origin.append(i)
    return "".join(chars), origin


# ---- recognizers ------------------------------------------------------------------------

_D = r"(?<![0-9])"  # no digit before
_ND = r"(?![0-9])"  # no digit after

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
# Patterns read folded text (`fold`), so ASCII classes are enough: a full-width hyphen, an en
# dash or ㅡ is "-" by then, a full-width digit a digit, an ideographic space a space.
_RRN = re.compile(_D + r"(\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))([ \t]*-[ \t]*|[ \t]|)([1-8]\d{6})" + _ND)
_RRN_CONTEXT = re.compile(r"(주민|등록번호|외국인등록|생년월일|RRN|resident registration)", re.IGNORECASE)
_ND_PART = r"(?![0-9]|-[0-9])"  # nor a further group: 010-1234-5678-90 is not a phone
_KR_MOBILE = re.compile(
    r"(?<![0-9+-])(?:\+82[-.\s]?1[016789]|01[016789])[-.\s]?\d{3,4}[-.\s]?\d{4}" + _ND_PART
)
_KR_LANDLINE = re.compile(
    r"(?<![0-9])(?:\+82[-.\s]?(?:2|[3-6][1-5])|0(?:2|[3-6][1-5]|70))([-.\s)])\s?\d{3,4}[-.\s]\d{4}" + _ND
)
_INTL_PHONE = re.compile(r"(?<![0-9\w])\+[1-9]\d{0,2}[-.\s]?\(?\d{1,4}\)?(?:[-.\s]?\d{2,4}){2,4}" + _ND)
_US_PHONE = re.compile(r"(?<![0-9])(?:\(\d{3}\)\s?|\d{3}[-.])\d{3}[-.]\d{4}" + _ND)
_CARD = re.compile(_D + r"(?:\d{4}[- ]?){2}\d{4}[- ]?\d{1,7}" + _ND + r"|" + _D + r"\d{4}[- ]?\d{6}[- ]?\d{5}" + _ND)
_IPV4 = re.compile(
    r"(?<![0-9.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![0-9]|\.[0-9])"
)
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
_ACCOUNT = re.compile(r"(?<![0-9-])\d{2,6}-\d{2,6}-\d{2,7}(?:-\d{1,3})?(?![0-9-])")
_ACCOUNT_PLAIN = re.compile(_D + r"\d{10,14}" + _ND)
_ACCOUNT_CONTEXT = re.compile(
    r"(계좌|계좌번호|입금|송금|이체|환불\s*받을|예금주|통장|은행|뱅크|국민|신한|우리|하나|농협|"
    r"기업|카카오|토스|새마을|우체국|수협|부산|대구|경남|광주|전북|제주|SC제일|씨티|"
    r"account|acct|a/c|bank|routing|iban|deposit|wire)",
    re.IGNORECASE,
)
_API_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|"
    r"github_pat_[A-Za-z0-9_]{22,}|gh[pousr]_[A-Za-z0-9]{36,}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|"
    r"xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"
)
# A PEM private key (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP's block), to its END line or, cut
# short, to the end of the text.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
)
_VERSION_BEFORE = re.compile(r"(?:v|version|ver\.?|버전)\s*$", re.IGNORECASE)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _rrn(text: str) -> list[Finding]:
    out = []
    for m in _RRN.finditer(text):
        digits = m.group(1) + m.group(3)
        if rrn_check_ok(digits):
            out.append(Finding("KR_RRN", m.start(), m.end(), 0.95))
        elif m.group(2):  # the separated form is distinctive even without the check digit
            out.append(Finding("KR_RRN", m.start(), m.end(), 0.6))
        elif _RRN_CONTEXT.search(text, max(0, m.start() - 30), m.start()):
            # 13 bare digits without the check digit (issued since Oct 2020) only where the
            # text says what they are: otherwise any order number with a date in it would go
            out.append(Finding("KR_RRN", m.start(), m.end(), 0.5))
    return out


def _cards(text: str) -> list[Finding]:
    out = []
    for m in _CARD.finditer(text):
        digits = _digits(m.group())
        if 13 <= len(digits) <= 19 and digits[0] in "2345689" and luhn_ok(digits):
            out.append(Finding("CREDIT_CARD", m.start(), m.end(), 0.9))
    return out


def _emails(text: str) -> list[Finding]:
    return [Finding("EMAIL_ADDRESS", m.start(), m.end(), 0.9) for m in _EMAIL.finditer(text)]


def _kr_phones(text: str) -> list[Finding]:
    return [Finding("KR_PHONE", m.start(), m.end(), 0.85) for m in _KR_MOBILE.finditer(text)]


def _phones(text: str) -> list[Finding]:
    out = [Finding("PHONE_NUMBER", m.start(), m.end(), 0.75) for m in _KR_LANDLINE.finditer(text)]
    for m in _INTL_PHONE.finditer(text):
        if 8 <= len(_digits(m.group())) <= 15:
            out.append(Finding("PHONE_NUMBER", m.start(), m.end(), 0.7))
    out += [Finding("PHONE_NUMBER", m.start(), m.end(), 0.6) for m in _US_PHONE.finditer(text)]
    return out


def _accounts(text: str) -> list[Finding]:
    out = []
    for m in _ACCOUNT.finditer(text):
        n = len(_digits(m.group()))
        if not 10 <= n <= 14 or _KR_LANDLINE.fullmatch(m.group()) or _KR_MOBILE.fullmatch(m.group()):
            continue  # a phone number in account clothing
        context = _ACCOUNT_CONTEXT.search(text, max(0, m.start() - 40), m.start())
        if context or n >= 12:
            out.append(Finding("ACCOUNT_NUMBER", m.start(), m.end(), 0.8 if context else 0.55))
    for m in _ACCOUNT_PLAIN.finditer(text):
        if _ACCOUNT_CONTEXT.search(text, max(0, m.start() - 40), m.start()):
            out.append(Finding("ACCOUNT_NUMBER", m.start(), m.end(), 0.6))
    return out


def _ips(text: str) -> list[Finding]:
    out = []
    for m in _IPV4.finditer(text):
        if not _VERSION_BEFORE.search(text, max(0, m.start() - 8), m.start()):
            out.append(Finding("IP_ADDRESS", m.start(), m.end(), 0.75))
    for m in _IPV6.finditer(text):
        candidate = m.group()
        if candidate.count(":") >= 2 and sum(1 for g in candidate.split(":") if g) >= 2:
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            out.append(Finding("IP_ADDRESS", m.start(), m.end(), 0.75))
    return out


def _api_keys(text: str) -> list[Finding]:
    return [Finding("API_KEY", m.start(), m.end(), 0.9) for m in _API_KEY.finditer(text)]


def _private_keys(text: str) -> list[Finding]:
    if "PRIVATE KEY" not in text:
        return []
    return [Finding("PRIVATE_KEY", m.start(), m.end(), 0.99) for m in _PRIVATE_KEY.finditer(text)]


RECOGNIZERS = {
    "KR_RRN": _rrn,
    "CREDIT_CARD": _cards,
    "EMAIL_ADDRESS": _emails,
    "KR_PHONE": _kr_phones,
    "PHONE_NUMBER": _phones,
    "ACCOUNT_NUMBER": _accounts,
    "IP_ADDRESS": _ips,
    "API_KEY": _api_keys,
    "PRIVATE_KEY": _private_keys,
}
_PRIORITY = {name: i for i, name in enumerate(RECOGNIZERS)}
# Digit-free text cannot hold most entities: skip their regexes (the common case for chat).
_NEEDS_DIGIT = {"KR_RRN", "CREDIT_CARD", "KR_PHONE", "PHONE_NUMBER", "ACCOUNT_NUMBER"}
_HAS_DIGIT = re.compile(r"\d")


def detect_pii(text: str, entities: list[str] | tuple[str, ...] | None = None) -> list[Finding]:
    """Non-overlapping findings, in text order; where two overlap the surer one wins."""
    if not text:
        return []
    if len(text) <= CACHED_TEXT:
        return list(_short_findings(text, tuple(entities) if entities else None))
    return _detect(text, entities)


# Texts a batch run sees on every case (a variable's name, a fixed instruction) are scanned
# once: the findings are a pure function of the text and the entities. Only short texts, so
# the cache stays small; Findings are frozen, so sharing them is safe.
CACHED_TEXT = 512


@functools.lru_cache(maxsize=4096)
def _short_findings(text: str, entities: tuple[str, ...] | None) -> tuple[Finding, ...]:
    return tuple(_detect(text, entities))


def _detect(text: str, entities: list[str] | tuple[str, ...] | None) -> list[Finding]:
    original = text
    text, origin = fold(text)
    has_digit = _HAS_DIGIT.search(text) is not None
    found: list[Finding] = []
    for name in entities or ENTITIES:
        if name in _NEEDS_DIGIT and not has_digit:
            continue
        if name == "EMAIL_ADDRESS" and "@" not in text:
            continue
        recognizer = RECOGNIZERS.get(name)
        if recognizer is None:
            raise ValueError(f"unknown PII entity {name!r}; known: {', '.join(ENTITIES)}")
        found.extend(recognizer(text))
    if len(found) >= 2:
        found.sort(key=lambda f: (-f.score, _PRIORITY[f.entity], -len(f)))
        kept: list[Finding] = []
        for f in found:
            if all(f.end <= k.start or f.start >= k.end for k in kept):
                kept.append(f)
        found = sorted(kept, key=lambda f: f.start)
    if origin is not None:  # back onto the original text, zero-width characters included
        origin.append(len(original))
        found = [Finding(f.entity, origin[f.start], origin[f.end - 1] + 1 if f.end > f.start else origin[f.start],
                         f.score) for f in found]
    return found


def mask_pii(text: str, entities: list[str] | tuple[str, ...] | None = None) -> tuple[str, list[Finding]]:
    """The guide's maskPII: every finding replaced by `<ENTITY>`."""
    findings = detect_pii(text, entities)
    if not findings:
        return text, findings
    parts, last = [], 0
    for f in findings:
        parts.append(text[last:f.start])
        parts.append(f"<{f.entity}>")
        last = f.end
    parts.append(text[last:])
    return "".join(parts), findings
