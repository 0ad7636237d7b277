"""Assertions: what a case checks about an output.

Deterministic: `equals`, `contains`, `icontains`, `regex`, `is-json`, `json-schema`,
`max-length` (each also as `not-<type>`). Semantic: `similar` (cosine similarity against a
reference, by an embedding model through the gateway, or by a local character n-gram TF-IDF
that needs no download). Judged: `llm-rubric` (the judge scores the output against a rubric)
and `expected` (made from a case's expected_output with no prefix: "does this answer satisfy
<expected>?"). An expected_output with an `equals:`, `contains:` or `regex:` prefix becomes
that deterministic assertion instead.

An assertion spec is `{"type": ..., "value": ..., "threshold": ...}`, or the short text form
`"contains:환불"`.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from store.errors import InvalidInput

from .json_reply import parse_json_reply

DETERMINISTIC = ("equals", "contains", "icontains", "regex", "is-json", "json-schema", "max-length")
SEMANTIC = ("similar",)
JUDGED = ("llm-rubric", "expected")
TYPES = DETERMINISTIC + SEMANTIC + JUDGED
NEGATABLE = DETERMINISTIC
EXPECTED_PREFIXES = ("equals", "contains", "regex")
DEFAULT_SIMILARITY = 0.75


@dataclass
class Check:
    """One assertion's outcome. `score` is 0..1; `passed` always comes from code, not a model."""

    type: str
    passed: bool
    score: float
    reason: str
    error: str | None = None
    detail: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        # Made by hand rather than by dataclasses.asdict, whose deep copy of every field cost
        # more than the check itself on each case of a batch run; `detail` (most checks have
        # none) is still deep-copied, as asdict did.
        out = {"type": self.type, "passed": self.passed, "score": self.score, "reason": self.reason}
        if self.error is not None:
            out["error"] = self.error
        if self.detail is not None:
            out["detail"] = copy.deepcopy(self.detail)
        return out


def _base_type(kind: str) -> tuple[str, bool]:
    if kind.startswith("not-") and kind[4:] in NEGATABLE:
        return kind[4:], True
    return kind, False


def validate_assertion(spec: Any) -> dict[str, Any]:
    """Normalise a spec, or say what is wrong with it."""
    if isinstance(spec, str):
        kind, sep, value = spec.partition(":")
        spec = {"type": kind.strip(), "value": value} if sep else {"type": kind.strip()}
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise InvalidInput(
            "an assertion is an object such as {\"type\": \"contains\", \"value\": \"환불\"}"
        )
    spec = dict(spec)
    kind, _negated = _base_type(spec["type"].strip().lower())
    spec["type"] = spec["type"].strip().lower()
    if kind not in TYPES:
        raise InvalidInput(f"unknown assertion type {spec['type']!r}; known: {', '.join(TYPES)}")
    value = spec.get("value")
    if kind in ("equals", "contains", "icontains", "regex", "similar", "llm-rubric", "expected") and (
        value is None or value == ""
    ):
        raise InvalidInput(f"a {kind!r} assertion needs a value")
    if kind == "regex":
        try:
            re.compile(str(value))
        except re.error as exc:
            raise InvalidInput(f"the regex {value!r} does not compile ({exc})") from None
    if kind == "max-length":
        try:
            spec["value"] = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"max-length needs a whole number of characters; got {value!r}") from None
    if kind == "json-schema":
        schema = value if value is not None else spec.get("schema")
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"the json-schema value is not valid JSON ({exc.msg})") from None
        import jsonschema

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidInput(f"the JSON schema is invalid: {exc.message}") from None
        spec["value"] = schema
        spec.pop("schema", None)
    if "threshold" in spec:
        threshold = spec["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise InvalidInput(f"an assertion threshold is a number; got {threshold!r}")
    return spec


def from_expected(expected: str | None) -> dict[str, Any] | None:
    """The assertion a case's expected_output stands for (None when there is none)."""
    if expected is None or not str(expected).strip():
        return None
    text = str(expected)
    head, sep, rest = text.partition(":")
    if sep and head.strip().lower() in EXPECTED_PREFIXES and rest.strip():
        return validate_assertion({"type": head.strip().lower(), "value": rest.strip()})
    return {"type": "expected", "value": text}


def case_assertions(case: dict[str, Any], defaults: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    found = list(defaults or [])
    implied = from_expected(case.get("expected"))
    if implied is not None:
        found.append(implied)
    found.extend(case.get("assertions") or [])
    return found


# ---- deterministic -----------------------------------------------------------------------------


def check_deterministic(spec: dict[str, Any], output: str) -> Check:
    kind, negated = _base_type(spec["type"])
    value = spec.get("value")
    passed, reason = _deterministic(kind, value, output)
    if negated:
        passed = not passed
        reason = f"not ({reason})"
    return Check(spec["type"], passed, 1.0 if passed else 0.0, reason)


def _deterministic(kind: str, value: Any, output: str) -> tuple[bool, str]:
    if kind == "equals":
        ok = output.strip() == str(value).strip()
        return ok, "output equals the expected text" if ok else f"output is not {_short(value)!r}"
    if kind == "contains":
        ok = str(value) in output
        return ok, f"output {'contains' if ok else 'does not contain'} {_short(value)!r}"
    if kind == "icontains":
        ok = str(value).casefold() in output.casefold()
        return ok, f"output {'contains' if ok else 'does not contain'} {_short(value)!r} (ignoring case)"
    if kind == "regex":
        ok = re.search(str(value), output) is not None
        return ok, f"output {'matches' if ok else 'does not match'} /{_short(value)}/"
    if kind == "is-json":
        try:
            parse_json_reply(output)
        except ValueError as exc:
            return False, f"output is not JSON ({exc})"
        return True, "output is valid JSON"
    if kind == "json-schema":
        return _json_schema(value, output)
    if kind == "max-length":
        n = len(output)
        ok = n <= int(value)
        return ok, f"output is {n} characters ({'within' if ok else 'over'} the limit of {value})"
    raise InvalidInput(f"{kind!r} is not a deterministic assertion")


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    import jsonschema

    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def _json_schema(schema: Any, output: str) -> tuple[bool, str]:
    try:
        data = parse_json_reply(output)
    except ValueError as exc:
        return False, f"output is not JSON ({exc})"
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        return False, f"output does not match the schema at {where}: {first.message}"
    return True, "output matches the schema"


# ---- similarity ------------------------------------------------------------------------------


def _ngrams(text: str, sizes: tuple[int, ...] = (1, 2, 3)) -> Counter:
    # Spacing and punctuation vary without changing meaning (Korean spacing above all).
    text = re.sub(r"[\W_]+", "", text.casefold())
    grams: Counter = Counter()
    for n in sizes:
        for i in range(max(0, len(text) - n + 1)):
            grams[text[i:i + n]] += 1
    return grams


def local_similarity(a: str, b: str) -> float:
    """Cosine of character 1-3-gram TF-IDF vectors (sublinear tf, smoothed idf over the pair).
    Character n-grams work for Korean and other scripts without a tokenizer or a model."""
    ga, gb = _ngrams(a), _ngrams(b)
    if not ga or not gb:
        return 1.0 if ga == gb else 0.0

    def idf(gram: str) -> float:
        df = (gram in ga) + (gram in gb)
        return math.log((1 + 2) / (1 + df)) + 1.0

    va = {g: (1 + math.log(c)) * idf(g) for g, c in ga.items()}
    vb = {g: (1 + math.log(c)) * idf(g) for g, c in gb.items()}
    dot = sum(v * vb[g] for g, v in va.items() if g in vb)
    na = math.sqrt(sum(v * v for v in va.values()))
    nb = math.sqrt(sum(v * v for v in vb.values()))
    return dot / (na * nb) if na and nb else 0.0


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def similarity_check(spec: dict[str, Any], similarity: float, method: str) -> Check:
    threshold = float(spec.get("threshold", DEFAULT_SIMILARITY))
    ok = similarity >= threshold
    return Check(
        "similar", ok, max(0.0, min(1.0, similarity)),
        f"similarity {similarity:.2f} {'>=' if ok else '<'} {threshold:.2f} ({method})",
        detail={"method": method, "similarity": round(similarity, 4)},
    )


def _short(value: Any, n: int = 60) -> str:
    text = str(value)
    return text if len(text) <= n else text[: n - 1] + "…"
