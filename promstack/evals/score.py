"""Scores and verdicts: 0-100 per case (the mean of its checks) and per run, the one pass
threshold (`PASS_SCORE`), and the one function that says whether a run passed.

A case the judge (or the model) could not score is *unscored*: it never counts as 0 in a mean
and never passes, and a run with any unscored case has no score at all (`"score": None`,
`"unscored": n`, `"unscored_reason": "..."`), so a CI job stops instead of comparing a number
that means nothing. Every face words a verdict through `run_verdict` / `score_verdict`.
"""

from __future__ import annotations

from typing import Any

from store.errors import InvalidInput, Step

# The guide's CI line `[ $score -lt 80 ]`: the score a run (and a judged case) needs to pass.
PASS_SCORE = 80.0


def case_score(check_scores: list[float]) -> float | None:
    """Each check scores 0..1 (a deterministic one 0 or 1); None when nothing was checked."""
    if not check_scores:
        return None
    return round(sum(check_scores) / len(check_scores) * 100, 2)


def run_score(summary: dict[str, Any]) -> int | None:
    """The bare integer `promstack evaluate` prints; None when any case is unscored."""
    if summary.get("unscored") or summary.get("score") is None:
        return None
    return int(round(summary["score"]))


def unscored_sentence(summary: dict[str, Any]) -> str:
    """Why a run has no score, in one sentence ('' when it has one)."""
    n = summary.get("unscored") or 0
    if not n:
        return ""
    reason = summary.get("unscored_reason") or "no reason recorded"
    return f"could not score: {n} case(s) unscored ({reason})"


def parse_min_pass(value: Any, where: str | None = None) -> float:
    """A minimum pass rate as a fraction: 0.9, 90 and 90% all mean nine in ten. `where` names a
    config file's key; else the argument is named in the caller's face's words."""
    name: Any = where or Step.arg("min_pass")
    if value is None:
        return 1.0
    text = str(value).strip().rstrip("%")
    try:
        number = float(text)
    except ValueError:
        raise InvalidInput(name, f" is a pass rate such as 0.9 or 90%; got {value!r}") from None
    if str(value).strip().endswith("%") or number > 1:
        number /= 100
    if not 0 <= number <= 1:
        raise InvalidInput(name, f" must be between 0 and 100%; got {value!r}")
    return number


def score_verdict(summary: dict[str, Any], min_score: float = PASS_SCORE) -> tuple[bool, str]:
    """The score check (the deploy gate's, and half of a run's verdict): passed, and the words."""
    score = run_score(summary)
    if score is None:
        return False, unscored_sentence(summary) or "could not score: the run has no results"
    ok = score >= min_score
    return ok, f"score {score}/100 {'>=' if ok else '<'} {min_score:g}"


def evaluate_verdict(summary: dict[str, Any]) -> str:
    """What every face says of `evaluate`'s run: its score against the deploy gate's default
    minimum, or why it has none."""
    said = score_verdict(summary)[1]
    return said if run_score(summary) is None else f"{said} (the deploy gate's default minimum)"


def case_threshold(run: dict[str, Any]) -> float:
    """The judge score a case of this run needed to pass (PASS_SCORE unless the run set one)."""
    judge = (run.get("config") or {}).get("judge") or {}
    value = judge.get("threshold")
    return PASS_SCORE if value is None else float(value)


def run_verdict(run: dict[str, Any], min_pass: float = 1.0) -> dict[str, Any]:
    """Whether a test run PASSED, by the rule the deploy gate's tests check uses: every case
    scored (an unscored case fails the run whatever `min_pass` says) and the pass rate at least
    `min_pass`, a judged case passing at the run's judge threshold (PASS_SCORE by default, the
    score the gate's score check wants). Returns {passed, min_pass, threshold, text}; the text
    names both thresholds, so a verdict never hides the bar it was held to."""
    summary = run.get("summary") or {}
    threshold = case_threshold(run)
    rate = summary.get("pass_rate", 0.0)
    rate_ok = summary.get("results", 0) > 0 and rate + 1e-12 >= min_pass
    unscored = unscored_sentence(summary)
    ok = rate_ok and not unscored
    text = (f"{'PASSED' if ok else 'FAILED'}: pass rate {rate:.0%} {'>=' if rate_ok else '<'} minimum "
            f"{min_pass:.0%} (a judged case passes at {threshold:g}/100)")
    if unscored:
        text += f"; {unscored}"
    return {"passed": ok, "min_pass": min_pass, "threshold": threshold, "text": text}
