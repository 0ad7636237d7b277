"""Scores: 0-100 per case (the mean of its checks) and per run (the mean over its results,
errors and unchecked cases counting 0), and the pass-rate threshold of `--min-pass`."""

from __future__ import annotations

from typing import Any

from store.errors import InvalidInput


def case_score(check_scores: list[float]) -> float | None:
    """Each check scores 0..1 (a deterministic one 0 or 1); None when nothing was checked."""
    if not check_scores:
        return None
    return round(sum(check_scores) / len(check_scores) * 100, 2)


def run_score(summary: dict[str, Any]) -> int:
    """The bare integer `promstack evaluate` prints."""
    return int(round(summary.get("score") or 0))


def parse_min_pass(value: Any) -> float:
    """`--min-pass` as a fraction: 0.9, 90 and 90% all mean nine in ten."""
    if value is None:
        return 1.0
    text = str(value).strip().rstrip("%")
    try:
        number = float(text)
    except ValueError:
        raise InvalidInput(f"--min-pass is a pass rate such as 0.9 or 90%; got {value!r}") from None
    if str(value).strip().endswith("%") or number > 1:
        number /= 100
    if not 0 <= number <= 1:
        raise InvalidInput(f"--min-pass must be between 0 and 100%; got {value!r}")
    return number


def passed(summary: dict[str, Any], min_pass: float) -> bool:
    return summary.get("results", 0) > 0 and summary.get("pass_rate", 0.0) + 1e-12 >= min_pass
