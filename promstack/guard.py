"""Guards: PII masking, prompt-injection detection and output filtering, as the guide's
`sanitizeInput` (maskPII + escapePromptInjection) and `filterOutput` describe them.

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

import ipaddress
import numbers
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from store.errors import PromStackError

FILTERED = "[응답 필터링됨]"  # the guide's marker for output that carried sensitive data
INAPPROPRIATE = "[부적절한 응답]"  # the guide's marker for harmful output

ENTITIES = (
    "KR_RRN", "CREDIT_CARD", "EMAIL_ADDRESS", "KR_PHONE", "PHONE_NUMBER", "ACCOUNT_NUMBER",
    "IP_ADDRESS", "API_KEY", "PRIVATE_KEY",
)
OUTPUT_SENSITIVE = ("KR_RRN", "CREDIT_CARD", "ACCOUNT_NUMBER", "API_KEY", "PRIVATE_KEY")

DEFAULTS: dict[str, Any] = {
    "pii": "mask",  # mask | detect | off
    "pii_entities": list(ENTITIES),
    "injection": "block",  # block | flag | off
    "injection_threshold": 0.5,
    "output": "filter",  # filter | mask | off
    "output_sensitive": list(OUTPUT_SENSITIVE),
}


class GuardBlocked(PromStackError):
    """An input guard refused the request; nothing was sent to the model."""

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report


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

_ZERO_WIDTH_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
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
        elif ch in _ZERO_WIDTH_CHARS:
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


# ---- prompt injection -------------------------------------------------------------------

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)

_I = re.IGNORECASE
# (rule, weight, pattern). Scores combine as 1 - Π(1 - wᵢ): one strong phrasing blocks alone,
# weak hints (role-play, "system prompt") only count together.
INJECTION_RULES: list[tuple[str, float, re.Pattern[str]]] = [
    ("ignore_previous", 0.9, re.compile(
        r"\b(ignore|disregard|forget|skip|bypass|override|overlook|drop|abandon|set aside|discard|"
        r"pay no attention to|never\s?mind|stop following|do not follow|don't follow|no longer follow)\s+"
        r"(?:all\s+|any\s+|the\s+|your\s+|my\s+|these\s+|those\s+|of\s+|everything\s+)*"
        r"(previous|prior|above|earlier|preceding|initial|original|system|existing|former|old|"
        r"everything)\b.{0,30}?\b(instructions?|prompts?|rules?|directions?|guidelines?|context|"
        r"messages?|constraints?|commands?|directives?|said|told)", _I)),
    ("ignore_instructions_above", 0.85, re.compile(
        r"\b(ignore|disregard|forget|discard|never\s?mind|pay no attention to|override)\s+"
        r"(?:all\s+|any\s+|the\s+|your\s+|these\s+|those\s+|of\s+)*"
        r"(?:instructions?|rules|prompts?|directions|guidelines|context|messages)\s+"
        r"(?:above|before|so far|given (?:above|earlier|before)|you (?:were|have been) given)", _I)),
    # "disregard the above" with nothing after it, or with an order after it; not "disregard
    # the above, I sent it by mistake" nor "ignore the typo above"
    ("ignore_above", 0.85, re.compile(
        r"\b(ignore|disregard|forget|discard|never\s?mind|pay no attention to)\s+(?:all\s+(?:of\s+)?)?"
        r"(?:the\s+|that\s+|this\s+|everything\s+)?(?:above|foregoing|preceding)"
        r"(?:\s*[.!]*\s*$|(?:\s*[.,;:!-]+\s*|\s+and\s+(?:then\s+)?)(?:instead\s*,?\s*)?(?:just\s+|now\s+|please\s+)?"
        r"(?:say|print|write|output|respond|reply|answer|tell|translate|act|pretend|you|from now|return|"
        r"repeat|show|give|list|reveal|do|follow|enter|switch|start|begin|only|obey|type|send)\b)", _I)),
    # "your previous instructions are void", "the rules above no longer apply"
    ("instructions_void", 0.85, re.compile(
        r"(?:\b(?:previous|prior|above|earlier|original|old|initial|system|your|all)\b[^.\n]{0,20}?"
        r"\b(?:instructions?|rules|prompts?|guidelines|directions|constraints|commands)(?:\s+(?:above|before))?|"
        r"\b(?:instructions?|rules|prompts?|guidelines|directions|constraints|commands)\s+(?:above|before))\s+"
        r"(?:(?:are|is|were)\s+(?:now\s+|hereby\s+)?(?:void|null|cancel+ed|revoked|obsolete|invalid|suspended|"
        r"lifted|disabled)|(?:are\s+|is\s+)?no longer (?:valid|apply|applicable|in effect|active))\b(?!.{0,40}\?\s*$)", _I)),
    ("ignore_everything", 0.8, re.compile(
        r"\b(ignore|disregard|forget)\s+(everything|all)\s+(above|before|that came before|you (were|have been) told)", _I)),
    ("ignore_rules", 0.6, re.compile(
        r"\b(ignore|disregard|forget|override|stop following|do not follow|don't follow)\s+(?:all\s+|any\s+|the\s+|your\s+)*"
        r"(instructions?|rules?|guidelines?|programming|guardrails?|restrictions?|policies|policy)\b", _I)),
    ("reveal_prompt", 0.75, re.compile(
        r"\b(reveal|show|print|display|output|repeat|tell me|give me|leak|dump|expose|share|"
        r"what (?:is|are|was|were) (?:your|the)|write out|recite|spell out)\b.{0,40}?"
        r"\b(system prompt|system message|initial prompt|hidden prompt|secret prompt|your (?:initial |original |hidden |secret )?instructions|"
        r"your prompt|(?:the )?prompt above|your rules|(?:original|initial|hidden|secret) instructions|developer message|"
        r"instructions above|text above)", _I)),
    ("system_prompt_mention", 0.3, re.compile(r"\b(system prompt|system message|developer message)\b", _I)),
    ("unrestricted_persona", 0.8, re.compile(
        r"\b(you are now|you're now|from now on,? you|act as|pretend (?:to be|you are|you're)|"
        r"roleplay as|behave as|become)\b.{0,60}?\b(unrestricted|unfiltered|uncensored|jailbroken|"
        r"without (?:any )?(?:restrictions|rules|limits|filters|guidelines|morals|ethics)|"
        r"no (?:restrictions|rules|limits|filters|guidelines|morals)|evil|amoral|free from)", _I)),
    # a new role handed to the model ("you are now an assistant that ..."), not a notice to a
    # customer ("you are now a member", "you are now connected")
    ("role_reassign", 0.55, re.compile(
        r"\b(?:you are now|you're now|from now on,? you (?:are|will be))\s+(?:a|an|my|the)\s+"
        r"(?!(?:member|customer|subscriber|user|participant|winner|owner|registered|verified|premium|vip|"
        r"part|proud|lucky|happy|new (?:member|customer|owner|subscriber))\b)", _I)),
    ("persona_switch", 0.3, re.compile(
        r"\b(you are now|you're now|from now on,? you (?:are|will|must)|pretend (?:to be|you are)|roleplay as)\b", _I)),
    # a bare name or word is a hint (DAN may be a coworker, iPhones get jailbroken); a mode is not
    ("jailbreak_name", 0.4, re.compile(r"\b(?:DAN|STAN|DUDE)\b(?!\w)", 0)),
    ("jailbreak_word", 0.4, re.compile(r"\bjailbr(?:eak|oken)\b", _I)),
    ("jailbreak_mode", 0.8, re.compile(
        r"\b(do anything now|developer mode|dev mode enabled|jailbreak mode|jailbroken mode|god mode|"
        r"sudo mode|admin mode|maintenance mode|(?:DAN|STAN) mode|you are (?:now )?(?:DAN|STAN))\b", _I)),
    ("special_tokens", 0.85, re.compile(
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>|\[/?INST\]|"
        r"<<\s*/?SYS\s*>>|<\s*/?\s*(?:system|sys)\s*>", _I)),
    ("fake_role_header", 0.6, re.compile(
        r"(?:^|\n)\s*(?:#{1,6}\s*)?(?:system|assistant|developer)\s*(?:message|prompt)?\s*:\s*\S", _I)),
    ("new_instructions", 0.6, re.compile(
        r"\b(new|updated|real|actual|true|revised|override|admin|system)\s+(instructions?|task|rules|directive|orders?)\s*[:：]"
        r"|\bBEGIN (?:SYSTEM|ADMIN|NEW) (?:PROMPT|INSTRUCTIONS?)|\bEND OF (?:PROMPT|INSTRUCTIONS|SYSTEM PROMPT)", _I)),
    ("disable_safety", 0.75, re.compile(
        r"\b(disable|turn off|switch off|bypass|circumvent|deactivate|remove|lift|ignore)\s+"
        r"(?:all\s+|your\s+|the\s+|any\s+)*(?:safety|content|ethical|moral|security)?\s*"
        r"(filters?|guardrails?|restrictions?|safeguards?|safety|censorship|moderation|limitations)", _I)),
    ("instead_say", 0.45, re.compile(
        r"\binstead,?\s+(?:just\s+)?(?:say|respond|output|print|reply|write|answer)\b", _I)),
    ("exfiltrate", 0.6, re.compile(
        r"\b(send|post|forward|upload|exfiltrate|transmit|leak)\b.{0,60}?\b(to|into)\s+(?:https?://|[\w.-]+@[\w.-]+)|"
        r"!\[[^\]]*\]\(https?://[^)]*\?[^)]*=", _I)),
    # Korean
    ("ko_ignore_previous", 0.9, re.compile(
        r"(이전|앞의|앞에서|앞에|위의|위에서|위에|위|기존|모든|앞서|지금까지|원래|처음|상기|이전에|앞선|먼저|방금|아까)"
        r"\s*(?:의\s*)?(?:(?:받은|주어진|말한|있는|나온|모든|쓴|적은|한|보낸|준|했던|써\s*둔|작성한)\s*)*"
        r"(지시|지침|명령|규칙|프롬프트|설정|대화|내용|안내|요청|말|것|건|거|글|부분|instructions?|rules?)"
        r"(?:사항|문|어|들)?\s*(?:은|는|을|를|이|가|도)?\s*(?:모두\s*|전부\s*|다\s*|싹\s*|완전히\s*)?"
        # "무시하셔도 됩니다" (you may ignore it: I sent it by mistake) gives leave, it is no order
        r"(무시(?!하셔도|해도|하셔도|하셨|했)|잊어|잊고|잊으|취소|무효|따르지\s*마|따르지\s*말|따르지\s*않|지워|"
        r"신경\s*(?:쓰지|끄|꺼)|상관\s*(?:하지|말|마|없이)|개의치|없던\s*(?:걸로|것으로|일로))")),
    ("ko_ignore_generic", 0.35, re.compile(r"(무시하고|무시해|잊어버리고|잊어버려|무시하세요|무시하십시오)")),
    ("ko_reveal_prompt", 0.8, re.compile(
        r"(시스템|system|초기|숨겨진|숨은|비밀|내부|원래)\s*(?:의\s*)?(프롬프트|메시지|지시|지침|설정|명령|prompt)"
        r"(?:문|어|사항)?\s*(?:을|를|이|가|은|는)?\s*.{0,20}?(알려|보여|출력|공개|말해|누설|유출|반복|그대로|적어|복사|뭐야|무엇)")),
    ("ko_system_prompt_mention", 0.3, re.compile(r"시스템\s*프롬프트")),
    ("ko_obey_only", 0.6, re.compile(r"(내|제|나의|저의)\s*(말|명령|지시)\s*만\s*(따르|따라|들어|복종)")),
    ("ko_role_reassign", 0.55, re.compile(
        r"(너는|당신은|넌)\s*(?:이제|지금부터|앞으로|이제부터)\s*.{0,30}?"
        r"(역할|AI|봇|인공지능|어시스턴트|비서|해커|캐릭터)\s*(?:이야|야|입니다|이다|이에요|예요|로서|로|을|를)")),
    ("ko_persona_switch", 0.35, re.compile(r"(너는|당신은|넌|너)\s*(이제|지금부터|앞으로)|지금부터\s*(너는|당신은|넌)")),
    ("ko_unrestricted", 0.8, re.compile(
        r"(제한|규칙|필터|검열|윤리|제약|규제)(?:이|가|도|은|는)?\s*(?:전혀\s*|아무\s*|하나도\s*)?(없는|없이|없다고|없어|받지\s*않는)")),
    ("ko_jailbreak", 0.8, re.compile(r"(탈옥|개발자\s*모드|관리자\s*모드|갓\s*모드|디버그\s*모드|제한\s*해제\s*모드)")),
    ("ko_disable_safety", 0.75, re.compile(
        r"(안전|보안|윤리|콘텐츠|콘텐트)?\s*(필터|제한|가이드라인|정책|규칙|검열|안전장치)(?:을|를|은|는)?\s*"
        r"(?:모두\s*|전부\s*|다\s*)?(해제|우회|꺼|끄고|끄세요|무시|비활성|풀어|없애)")),
    ("ko_new_instructions", 0.6, re.compile(r"(새로운|새|진짜|실제)\s*(지시|명령|규칙|임무|지침)(?:사항)?\s*[:：]")),
    ("ko_pretend", 0.3, re.compile(r"(인\s*척|척\s*해|척하고|척하세요|역할극|롤플레이)")),
]


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)


@dataclass
class InjectionResult:
    score: float
    rules: list[str] = field(default_factory=list)


def injection_score(text: str) -> InjectionResult:
    """How much `text` reads like a prompt-injection attempt, 0..1, and which rules fired."""
    if not text:
        return InjectionResult(0.0)
    norm = _normalise(text)
    keep = 1.0
    fired = []
    for name, weight, pattern in INJECTION_RULES:
        if pattern.search(norm):
            fired.append(name)
            keep *= 1.0 - weight
    return InjectionResult(round(1.0 - keep, 4), fired)


_SPECIAL = re.compile(
    r"<\|[a-z_]{2,20}\|>|\[/?INST\]|<<\s*/?SYS\s*>>|<\s*/?\s*(?:system|sys)\s*>", re.IGNORECASE
)


def escape_injection(text: str) -> str:
    """The guide's escapePromptInjection: defuse chat-template control tokens and role tags a
    user pasted in, so they reach the model as plain text rather than structure."""
    return _SPECIAL.sub(lambda m: m.group().replace("<", "‹").replace(">", "›").replace("[", "(").replace("]", ")"), text)


escape_prompt_injection = escape_injection  # the guide's name


# ---- output -------------------------------------------------------------------------------

_HARMFUL = re.compile(
    r"(씨발|시발|ㅅㅂ|ㅆㅂ|씹|개새끼|개새기|새끼야|병신|ㅄ|좆|지랄|니미|엿\s*먹어|꺼져|닥쳐|미친\s*놈|미친\s*년|"
    r"죽어\s*버려|죽어버려|자살\s*해|자살하세요|"
    r"폭탄\s*(?:만드는|제조)|마약\s*(?:만드는|제조)|\bfuck(?:ing)?\s+you\b|\bmotherfuck|\bkill yourself\b|\bkys\b|"
    r"\bgo die\b|\bshut the fuck up\b|\bpiece of shit\b|\bretard(?:ed)?\b|"
    r"how to (?:make|build) (?:a )?(?:bomb|pipe bomb|explosive)|step[- ]by[- ]step.{0,40}(?:bomb|nerve agent|meth))",
    re.IGNORECASE,
)


def is_harmful(text: str) -> bool:
    return bool(text) and _HARMFUL.search(_normalise(text)) is not None


def contains_sensitive_data(text: str, entities: list[str] | tuple[str, ...] = OUTPUT_SENSITIVE) -> list[Finding]:
    return detect_pii(text, entities)


def filter_output(text: str, settings: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The guide's filterOutput: `[응답 필터링됨]` for sensitive data, `[부적절한 응답]` for
    harmful content, else the text (or, in mode "mask", the text with PII masked)."""
    settings = settings or DEFAULTS
    mode = settings.get("output", "filter")
    if mode == "off" or not text:
        return text, {"action": "off" if mode == "off" else "passed"}
    sensitive = contains_sensitive_data(text, settings.get("output_sensitive", OUTPUT_SENSITIVE))
    if sensitive:
        kinds = sorted({f.entity for f in sensitive})
        if mode == "mask":
            masked, _ = mask_pii(text, settings.get("output_sensitive", OUTPUT_SENSITIVE))
            return masked, {"action": "masked", "entities": kinds}
        return FILTERED, {"action": "filtered", "reason": "sensitive", "entities": kinds}
    if is_harmful(text):
        return INAPPROPRIATE, {"action": "filtered", "reason": "harmful"}
    return text, {"action": "passed"}


# ---- the input side as one step ------------------------------------------------------------

def _texts(value: Any):  # noqa: ANN202 - yields str
    """Every text a template can see inside a variable value: strings, numbers by their
    string form, and dictionary keys as well as values, however deep."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _texts(k)
            yield from _texts(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from _texts(v)
    elif isinstance(value, numbers.Number):
        yield str(value)


def map_texts(value: Any, fn: Callable[[str], str]) -> Any:
    """`value` with `fn` applied to every text a template can see (see `_texts`). A number
    `fn` leaves alone stays a number; one it changes (a card or an RRN typed as a number)
    becomes the changed text. A dictionary key that two keys would share after `fn` gets a
    ` #2` suffix rather than losing a value."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key = map_texts(k, fn)
            if key in out:
                n = 2
                while f"{key} #{n}" in out:
                    n += 1
                key = f"{key} #{n}"
            out[key] = map_texts(v, fn)
        return out
    if isinstance(value, tuple):
        return tuple(map_texts(v, fn) for v in value)
    if isinstance(value, list | set | frozenset):
        # a set becomes a list: two members masked alike would otherwise merge into one
        return [map_texts(v, fn) for v in value]
    if isinstance(value, numbers.Number):
        text = str(value)
        changed = fn(text)
        return value if changed == text else changed
    return value


def mask_value(value: Any, entities: list[str] | tuple[str, ...] | None = None) -> Any:
    """`value` (a variable, or all of them) with PII masked wherever a template could see it."""
    return map_texts(value, lambda text: mask_pii(text, entities)[0])


def sanitize_input(
    variables: dict[str, Any] | str, settings: dict[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The guide's sanitizeInput over a call's variables (the user's input; the template is the
    team's own text), or over one text: PII masked, injection scored and control tokens
    defused. Returns what to render with and the guards' report; raises GuardBlocked in block
    mode."""
    if isinstance(variables, str):
        clean, report = sanitize_input({"input": variables}, settings)
        return clean["input"], report
    settings = settings or DEFAULTS
    report: dict[str, Any] = {}
    pii_mode = settings.get("pii", "mask")
    if pii_mode != "off":
        counts: dict[str, int] = {}
        entities = settings.get("pii_entities") or ENTITIES

        def mask(text: str) -> str:
            masked, findings = mask_pii(text, entities)
            for f in findings:
                counts[f.entity] = counts.get(f.entity, 0) + 1
            return masked if pii_mode == "mask" else text

        # keys too: a template can loop over a dictionary's items, and the audit row keeps them
        variables = map_texts(variables, mask)
        report["pii"] = {
            "action": ("masked" if pii_mode == "mask" else "detected") if counts else "passed",
            "entities": counts,
        }
    inj_mode = settings.get("injection", "block")
    if inj_mode != "off":
        best = InjectionResult(0.0)
        for text in _texts(variables):
            result = injection_score(text)
            if result.score > best.score:
                best = result
        threshold = float(settings.get("injection_threshold", 0.5))
        hit = best.score >= threshold
        action = ("blocked" if inj_mode == "block" else "flagged") if hit else "passed"
        report["injection"] = {"action": action, "score": best.score, "rules": best.rules}
        if action == "blocked":
            raise GuardBlocked(
                f"the input looks like a prompt injection (score {best.score:.2f} >= "
                f"{threshold}; rules: {', '.join(best.rules)}); nothing was sent to the model. "
                "Set [guard] injection = \"flag\" in .promstack/config.toml to let such input through",
                report,
            )
        variables = map_texts(variables, escape_injection)
    return variables, report
