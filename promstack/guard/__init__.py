"""Guards: PII masking, prompt-injection detection and output filtering, as the guide's
`sanitizeInput` (maskPII + escapePromptInjection) and `filterOutput` describe them.

The gateway runs two steps from here: `sanitize_input` over a call's variables before the call,
`filter_output` over the reply after it, each configured by the `[guard]` settings (`DEFAULTS`).
The recognizers of personal data are in `pii` (pure Python, offline, microseconds), the injection
score in `injection`; input masking and the output filter share the one recognizer set.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

from store.errors import PromStackError

from .injection import (
    InjectionResult,
    escape_injection,
    escape_prompt_injection,
    injection_score,
    normalise,
)
from .pii import (
    ENTITIES,
    OUTPUT_SENSITIVE,
    Finding,
    detect_pii,
    luhn_ok,
    mask_pii,
    rrn_check_ok,
)

__all__ = [
    "DEFAULTS", "ENTITIES", "FILTERED", "INAPPROPRIATE", "OUTPUT_SENSITIVE", "Finding", "GuardBlocked",
    "InjectionResult", "contains_sensitive_data", "detect_pii", "escape_injection", "escape_prompt_injection",
    "filter_output", "injection_score", "is_harmful", "luhn_ok", "map_texts", "mask_pii", "mask_value",
    "rrn_check_ok", "sanitize_input",
]

FILTERED = "[응답 필터링됨]"  # the guide's marker for output that carried sensitive data
INAPPROPRIATE = "[부적절한 응답]"  # the guide's marker for harmful output

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

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report



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
    return bool(text) and _HARMFUL.search(normalise(text)) is not None


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
