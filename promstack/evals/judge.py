"""The LLM judge: scores an output against criteria, or picks the better of two outputs.

The guide's judge file is accepted as it is:

    {"criteria": ["응답이 질문에 적절한가?", "톤이 일관적인가?", "잘못된 정보가 없는가?"], "scoring": "1-5"}

The judge's prompts are versioned prompts in the store (`promstack/judge`, `promstack/judge-pair`),
created on first use and editable like any other; the version used is part of the judge key, so
results judged by an edited judge are never mistaken for old ones. The judge runs at temperature
0 and answers in JSON whose shape its structured-output schema fixes: exactly one entry per
criterion (an array with minItems = maxItems = the number of criteria), each an integer score in
the scale and a one-sentence reason. A reply of another shape is asked again (the attempts are
counted) and never cached; a case the judge still could not score is *unscored*, never 0. Where the
provider returns log-probabilities, a criterion's score is the probability-weighted mean over
the score tokens (G-Eval); `geval` says whether that happened or the raw score was used.
Pass/fail always comes from the numeric score against the threshold.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from store.errors import InvalidInput, NotFound, Step

from .gateway import Gateway, GatewayError, Reply
from .json_reply import parse_json_reply, unfence
from .score import PASS_SCORE

if TYPE_CHECKING:
    from ..client import Client
    from .judgement import Judgement, PairJudgement

JUDGE_PROMPT = "promstack/judge"
PAIR_PROMPT = "promstack/judge-pair"
DEFAULT_THRESHOLD = PASS_SCORE  # 0-100: the one pass threshold, the deploy gate's too
DEFAULT_RETRIES = 2

JUDGE_TEMPLATE = [
    {
        "role": "system",
        "content": (
            "You are a strict, fair evaluator of AI answers. Score the answer on each criterion "
            "from {{ scale_min }} (worst) to {{ scale_max }} (best), with one sentence of reason per "
            "criterion. Judge only what is asked; do not reward length.\n"
            "Reply with JSON only, exactly in this shape:\n"
            '{"scores": [{"criterion": 1, "score": <integer>, "reason": "<one sentence>"}, ...]}\n'
            "with one entry per criterion, in order."
        ),
    },
    {
        "role": "user",
        "content": (
            "Question:\n{{ input }}\n\nAnswer to evaluate:\n{{ output }}\n"
            "{% if reference %}\nReference answer (for comparison):\n{{ reference }}\n{% endif %}"
            "\nCriteria:\n{{ criteria }}"
        ),
    },
]

PAIR_TEMPLATE = [
    {
        "role": "system",
        "content": (
            "You compare two AI answers to the same question, blind: you do not know which model "
            "wrote which. Decide which answer is better overall{% if criteria %} on these criteria:\n"
            "{{ criteria }}{% else %}.{% endif %}\nIgnore the order in which they are shown and their "
            'length. Reply with JSON only: {"winner": "A" or "B" or "tie", "reason": "<one sentence>"}'
        ),
    },
    {
        "role": "user",
        "content": "Question:\n{{ input }}\n\n[Answer A]\n{{ answer_a }}\n\n[Answer B]\n{{ answer_b }}",
    },
]


# ---- configuration ---------------------------------------------------------------------------


@dataclass
class JudgeConfig:
    criteria: list[str] = field(default_factory=list)
    scale: tuple[int, int] = (1, 5)
    model: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    retries: int = DEFAULT_RETRIES
    prompt_version: int | None = None
    pair_prompt_version: int | None = None

    def key(self) -> str:
        """What makes a judged result reusable: any change here is a different judge."""
        body = json.dumps(
            [self.criteria, list(self.scale), self.model, self.threshold, self.prompt_version,
             self.pair_prompt_version], ensure_ascii=False,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"criteria": self.criteria, "scoring": f"{self.scale[0]}-{self.scale[1]}",
                "model": self.model, "threshold": self.threshold, "retries": self.retries,
                "prompt_version": self.prompt_version, "pair_prompt_version": self.pair_prompt_version}


def parse_scale(scoring: Any) -> tuple[int, int]:
    if scoring is None:
        return (1, 5)
    match = re.fullmatch(r"\s*(\d+)\s*[-~]\s*(\d+)\s*", str(scoring))
    if not match:
        raise InvalidInput(f"'scoring' is a range such as \"1-5\"; got {scoring!r}")
    lo, hi = int(match.group(1)), int(match.group(2))
    if not 0 <= lo < hi <= 10:
        raise InvalidInput(f"'scoring' must be a range of whole numbers within 0-10, such as \"1-5\"; got {scoring!r}")
    return lo, hi


def load_judge(document: Any, *, model: str | None = None, threshold: float | None = None,
               retries: int | None = None) -> JudgeConfig:
    """A judge config from the guide's JSON (or just a list of criteria)."""
    if document is None:
        document = {}
    if isinstance(document, list):
        document = {"criteria": document}
    if not isinstance(document, dict):
        raise InvalidInput('a judge is {"criteria": [...], "scoring": "1-5"}')
    unknown = set(document) - {"criteria", "scoring", "model", "threshold", "retries"}
    if unknown:
        raise InvalidInput(f"unknown judge setting(s) {', '.join(sorted(unknown))}; known: criteria, scoring, model, threshold")
    criteria = document.get("criteria") or []
    if isinstance(criteria, str):
        criteria = [criteria]
    if not isinstance(criteria, list) or not all(isinstance(c, str | dict) for c in criteria):
        raise InvalidInput("'criteria' is a list of questions, such as [\"응답이 질문에 적절한가?\"]")
    texts = []
    for c in criteria:
        text = c if isinstance(c, str) else (c.get("description") or c.get("name") or "")
        if not str(text).strip():
            raise InvalidInput("a judge criterion cannot be empty")
        texts.append(str(text).strip())
    thr = threshold if threshold is not None else document.get("threshold", DEFAULT_THRESHOLD)
    if isinstance(thr, bool) or not isinstance(thr, int | float) or not 0 <= thr <= 100:
        raise InvalidInput("the judge threshold is a number from 0 to 100")
    tries = retries if retries is not None else document.get("retries", DEFAULT_RETRIES)
    if isinstance(tries, bool) or not isinstance(tries, int) or tries < 0:
        raise InvalidInput("judge retries is a whole number from 0")
    return JudgeConfig(
        criteria=texts, scale=parse_scale(document.get("scoring")), model=model or document.get("model"),
        threshold=float(thr), retries=tries,
    )


def read_judge_file(path: str) -> dict[str, Any]:
    """A judge file (the guide's judge.json), checked; returns the document itself."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise NotFound(f"there is no judge file {path!r}")
    try:
        document = json.loads(p.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{p.name} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{p.name}: not UTF-8 text; save it as UTF-8") from None
    try:
        load_judge(document)
    except InvalidInput as exc:
        raise InvalidInput(f"{p.name}: {exc}") from None
    return document


def ensure_judge_prompts(client: Client) -> tuple[int, int]:
    """The judge prompts' current versions, creating them on first use."""
    versions = []
    for name, template in ((JUDGE_PROMPT, JUDGE_TEMPLATE), (PAIR_PROMPT, PAIR_TEMPLATE)):
        try:
            versions.append(client.get_prompt(name).version)
        except NotFound:
            try:
                created = client.create_prompt(
                    name, template, model_config={"temperature": 0},
                    description="PromStack's LLM judge prompt; edit it to change how outputs are judged",
                    message="Created on first use by the judge", author="promstack", source="promstack",
                )
            except InvalidInput:
                # Created by a concurrent process in the meantime.
                created = client.get_prompt(name)
            versions.append(created.version)
    return versions[0], versions[1]


# ---- structured output -------------------------------------------------------------------------


def judgement_schema(n_criteria: int, scale: tuple[int, int]) -> dict[str, Any]:
    """The response format that fixes the answer's shape: exactly one entry per criterion
    (minItems = maxItems = n), each criterion numbered 1..n and an integer score in the scale."""
    lo, hi = scale
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "judgement",
            "strict": True,
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "required": ["scores"],
                "properties": {"scores": {
                    "type": "array", "minItems": n_criteria, "maxItems": n_criteria,
                    "items": {
                        "type": "object", "additionalProperties": False,
                        "required": ["criterion", "score", "reason"],
                        "properties": {
                            "criterion": {"type": "integer", "minimum": 1, "maximum": n_criteria},
                            "score": {"type": "integer", "minimum": lo, "maximum": hi},
                            "reason": {"type": "string"},
                        },
                    },
                }},
            },
        },
    }

PAIR_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "pair_judgement",
        "strict": True,
        "schema": {
            "type": "object", "additionalProperties": False, "required": ["winner", "reason"],
            "properties": {"winner": {"type": "string", "enum": ["A", "B", "tie"]},
                           "reason": {"type": "string"}},
        },
    },
}


class MalformedJudgement(ValueError):
    pass


@dataclass
class JudgeFailure:
    """Why the judge could not score: a short reason, and the last reply's fault."""

    why: str
    detail: str

    def __str__(self) -> str:
        return f"{self.why} (last: {self.detail})" if self.detail else self.why


def _reply_json(text: str) -> Any:
    try:
        return parse_json_reply(text, embedded=True)
    except ValueError:
        raise MalformedJudgement(f"the judge did not answer in JSON: {unfence(text)[:80]!r}") from None


def parse_judgement(text: str, n_criteria: int, scale: tuple[int, int]) -> Judgement:
    from pydantic import ValidationError

    from .judgement import Judgement  # pydantic loads when a judge answers, not with every test run

    data = _reply_json(text)
    try:
        judgement = Judgement.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MalformedJudgement(
            f"the judgement does not fit the schema ({'.'.join(map(str, first['loc']))}: {first['msg']})"
        ) from None
    if len(judgement.scores) != n_criteria:
        raise MalformedJudgement(
            f"the judge scored {len(judgement.scores)} criteria where there are {n_criteria}"
        )
    lo, hi = scale
    for i, item in enumerate(judgement.scores, start=1):
        if not lo <= item.score <= hi:
            raise MalformedJudgement(f"a score of {item.score} is outside the scale {lo}-{hi}")
        if isinstance(item.criterion, int) and item.criterion != i:
            raise MalformedJudgement(
                f"the judge's entry {i} is for criterion {item.criterion}: one score per criterion, in order")
    return judgement


def parse_pair(text: str) -> PairJudgement:
    data = _reply_json(text)
    if isinstance(data, dict) and isinstance(data.get("winner"), str):
        data = {**data, "winner": {"a": "A", "b": "B", "tie": "tie"}.get(data["winner"].strip().lower(), data["winner"])}
    from pydantic import ValidationError

    from .judgement import PairJudgement

    try:
        return PairJudgement.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MalformedJudgement(
            f"the pairwise judgement does not fit the schema ({'.'.join(map(str, first['loc']))}: {first['msg']})"
        ) from None


# ---- G-Eval ----------------------------------------------------------------------------------


def geval_scores(text: str, logprobs: list[dict[str, Any]] | None, scale: tuple[int, int],
                 n: int) -> list[float | None]:
    """For each of the n `"score": <digit>` in the judge's text, the probability-weighted mean
    over the score tokens the model considered there; None where that cannot be computed."""
    found: list[float | None] = [None] * n
    if not logprobs:
        return found
    offsets = []
    position = 0
    for item in logprobs:
        token = item.get("token") or ""
        offsets.append((position, position + len(token), item))
        position += len(token)
    joined = "".join(item.get("token") or "" for item in logprobs)
    if joined != text:
        # Tokens that don't reassemble the text cannot be aligned with the scores.
        return found
    lo, hi = scale
    for i, match in enumerate(re.finditer(r'"score"\s*:\s*(\d+(?:\.\d+)?)', text)):
        if i >= n:
            break
        at = match.start(1)
        item = next((it for s, e, it in offsets if s <= at < e), None)
        if item is None or (item.get("token") or "").strip() != match.group(1):
            continue
        candidates = item.get("top_logprobs") or [{"token": item.get("token"), "logprob": item.get("logprob")}]
        weights: dict[int, float] = {}
        for cand in candidates:
            token = (cand.get("token") or "").strip()
            if token.isdigit() and lo <= int(token) <= hi and cand.get("logprob") is not None:
                weights[int(token)] = weights.get(int(token), 0.0) + math.exp(cand["logprob"])
        total = sum(weights.values())
        if total > 0:
            found[i] = sum(v * p for v, p in weights.items()) / total
    return found


def to_percent(score: float, scale: tuple[int, int]) -> float:
    lo, hi = scale
    return (score - lo) / (hi - lo) * 100.0


# ---- judging -------------------------------------------------------------------------------


@dataclass
class Verdict:
    score: float | None  # 0-100, None when the judge failed
    passed: bool
    reason: str
    criteria: list[dict[str, Any]] = field(default_factory=list)
    geval: bool = False
    error: str | None = None
    attempts: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class Judge:
    """Judging through the gateway; one per run (it holds the judge config and prompt refs)."""

    def __init__(self, gateway: Gateway, config: JudgeConfig, *, run_id: str | None = None,
                 default_model: str | None = None) -> None:
        self.gateway = gateway
        self.config = config
        self.run_id = run_id
        self.model = config.model or default_model

    def _criteria_text(self, criteria: list[str]) -> str:
        return "\n".join(f"{i}. {c}" for i, c in enumerate(criteria, start=1))

    async def score(self, *, input: str | None, output: str, criteria: list[str] | None = None,
                    reference: str | None = None, threshold: float | None = None,
                    cache_extra: str = "") -> Verdict:
        criteria = criteria or self.config.criteria
        if not criteria:
            raise InvalidInput("the judge has no criteria: give ", Step.arg("criteria"), " or a rubric")
        scale = self.config.scale
        threshold = self.config.threshold if threshold is None else threshold
        variables = {"input": input or "", "output": output, "reference": reference or "",
                     "criteria": self._criteria_text(criteria), "scale_min": scale[0], "scale_max": scale[1]}
        judgement, reply, error, usage, tries = await self._ask(
            parse=lambda text: parse_judgement(text, len(criteria), scale), cache_extra=cache_extra,
            prompt=JUDGE_PROMPT, version=self.config.prompt_version, variables=variables,
            response_format=judgement_schema(len(criteria), scale), logprobs=True,
        )
        if judgement is None:
            return Verdict(None, False, f"unscored: {error}", [], False, error.why, tries, *usage)
        weighted = geval_scores(reply.output, reply.logprobs, scale, len(criteria))
        per = []
        for text, item, w in zip(criteria, judgement.scores, weighted, strict=True):
            value = w if w is not None else item.score
            per.append({"criterion": text, "score": item.score, "weighted": None if w is None else round(w, 4),
                        "percent": round(to_percent(value, scale), 2), "reason": item.reason})
        geval = all(w is not None for w in weighted)
        score = sum(p["percent"] for p in per) / len(per)
        passed = score >= threshold
        worst = min(per, key=lambda p: p["percent"])
        reason = (f"judge score {score:.0f}/100 {'>=' if passed else '<'} {threshold:g}; "
                  f"lowest: {worst['criterion']} -> {worst['score']:g} ({worst['reason']})")
        return Verdict(round(score, 2), passed, reason, per, geval, None, tries, *usage)

    async def _ask(self, *, parse: Any, cache_extra: str, **request: Any) -> tuple[Any, Any, str | None, list, int]:
        """Ask the judge model (temperature 0) until `parse` accepts its answer, at most
        1 + retries times. Returns (parsed or None, the reply, why it failed or None,
        [input_tokens, output_tokens, cost] over every attempt, attempts made).

        Only a reply `parse` accepts is cached (and only such a cached reply is served), so a
        malformed judgement is never cached, a retry really asks the model again, and its good
        answer is cached for the next run."""
        usage = [0, 0, 0.0]
        malformed = 0
        last_error = ""
        tries = self.config.retries + 1

        def acceptable(text: str) -> bool:
            try:
                parse(text)
            except MalformedJudgement:
                return False
            return True

        for attempt in range(tries):
            try:
                reply: Reply = await self.gateway.complete(
                    model=self.model, run_id=self.run_id, temperature=0, cache_extra=cache_extra,
                    cache_accept=acceptable, **request,
                )
            except GatewayError as exc:
                last_error = f"the judge call failed: {exc}"
                continue
            usage[0] += reply.input_tokens
            usage[1] += reply.output_tokens
            usage[2] += reply.cost_usd
            try:
                return parse(reply.output), reply, None, usage, attempt + 1
            except MalformedJudgement as exc:
                malformed += 1
                last_error = str(exc)
        # A short, stable reason (a run's unscored cases are counted by it); the last reply's
        # fault goes into the case's reason.
        if malformed:
            why = f"the judge's replies did not match the schema after {tries} tries"
        else:
            why = f"the judge could not be reached after {tries} tries"
        return None, None, JudgeFailure(why, last_error), usage, tries

    async def compare(self, *, input: str | None, answer_a: str, answer_b: str,
                      cache_extra: str = "") -> tuple[str | None, str, str | None, list[float]]:
        """('A' | 'B' | 'tie' | None on error, reason, error, [input_tokens, output_tokens, cost])."""
        variables = {"input": input or "", "answer_a": answer_a, "answer_b": answer_b,
                     "criteria": self._criteria_text(self.config.criteria) if self.config.criteria else ""}
        pair, _, error, usage, _ = await self._ask(
            parse=parse_pair, cache_extra=cache_extra, prompt=PAIR_PROMPT,
            version=self.config.pair_prompt_version, variables=variables, response_format=PAIR_SCHEMA,
        )
        if pair is None:
            return None, "", str(error), usage
        return pair.winner, pair.reason, None, usage
