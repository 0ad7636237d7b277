"""Bisect: the first version on a branch's history where a case went from pass to fail (or the
suite's score fell below a bar), as `git bisect` finds a commit.

The range is the branch's line of versions from `good` (default: its oldest) to `bad` (default:
its head). Versions with a finished run of the suite are known for free and narrow the range
first; then a binary search tests the middle version until the good and the bad one are
neighbours. Neither end is tested up front: a search that only ever moved one way has not seen
the other end, so that end alone is tested last. That is ceil(log2(n - 1)) + 1 versions at most
for n > 2 versions (at most ceil(log2 n) + 1). Testing a version for one case runs that case only; for a score, the whole suite
(a test run, stored, so the next bisect or the behaviour diff reuses it). Every call goes through
the gateway's cache, so a bisect repeated makes no model call.

Versions are assumed to go from good to bad once, as git assumes of commits: a case that broke,
was fixed and broke again is blamed on one of its breaks.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from store.errors import InvalidInput, NotFound, Step

from .catalog import get_suite, suite_for_prompt
from .gateway import LiveGateway
from .plans import build_plan, check_columns
from .reuse import CountingGateway, case_result, complete_run, version_run
from .runner import Runner
from .score import run_score

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Bisection", "abisect", "bisect", "most_tests"]

CLIP = 80


@dataclass
class Bisection:
    """A bisect's answer; `text` is its one wording, for every face."""

    culprit: int | None
    parent: int | None
    tested: list[int]
    model_calls: int
    diff: str
    reason: str | None
    text: str
    found: bool
    prompt_id: int = 0
    name: str = ""
    suite: str = ""
    case: str | None = None
    min_score: float | None = None
    outcomes: dict[int, dict[str, Any]] = field(default_factory=dict)  # version -> {passed, score, reason, reused}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def most_tests(n: int) -> int:
    """The most versions a bisect over n versions tests (the bound the tests and bench hold it to)."""
    if n < 2:
        return 0
    return max(2, math.ceil(math.log2(n - 1)) + 1)  # two versions: both ends, nothing between


@dataclass
class _Probe:
    """What one bisect tests a version for: one case, or the suite's score against a bar."""

    client: Any
    suite: dict[str, Any]
    prompt_id: int
    case: dict[str, Any] | None
    min_score: float | None
    gateway: CountingGateway
    outcomes: dict[int, dict[str, Any]] = field(default_factory=dict)
    tested: list[int] = field(default_factory=list)
    progress: Any = None  # progress(versions looked at, at most, "v7 pass")
    most: int = 0

    def known(self, version: int) -> dict[str, Any] | None:
        """The outcome of `version` from a finished run, without running anything."""
        evals = self.client.evals
        if self.case is not None:
            found = case_result(evals, self.suite, self.prompt_id, version, self.case["case_key"])
            if found is None:
                return None
            return {"passed": found["status"] == "pass", "score": found["score"], "reason": found["reason"],
                    "reused": found["run_id"]}
        run = complete_run(evals, self.suite, self.prompt_id, version)
        return None if run is None else self._scored(run, reused=run["id"])

    def _scored(self, run: dict[str, Any], *, reused: str | None = None) -> dict[str, Any]:
        summary = run["summary"] or {}
        score = run_score(summary)
        assert self.min_score is not None
        passed = score is not None and score >= self.min_score
        failing = summary.get("failing") or []
        why = f"score {'none' if score is None else score} {'>=' if passed else '<'} {self.min_score:g}"
        if score is None:
            why = f"no score: {summary.get('unscored_reason') or 'a case could not be scored'}"
        elif failing and not passed:
            first = failing[0]
            why += f"; e.g. case {first['case']} {_clip(first['input'])!r}: {first['why']}"
        return {"passed": passed, "score": score, "reason": why, "reused": reused, "run": run["id"],
                "decided": score is not None}

    async def outcome(self, version: int) -> dict[str, Any]:
        if version in self.outcomes:
            return self.outcomes[version]
        self.tested.append(version)
        found = self.known(version)
        if found is None:
            found = await (self._run_case(version) if self.case is not None else self._run_suite(version))
        found.setdefault("decided", True)
        self.outcomes[version] = found
        if self.progress is not None:
            verdict = "pass" if found["passed"] else "fail" if found["decided"] else "unscored"
            self.progress(len(self.tested), max(self.most, len(self.tested)), f"v{version} {verdict}")
        return found

    async def _run_case(self, version: int) -> dict[str, Any]:
        """One case on one version (its first model, first repeat): no run is stored, the
        gateway's cache keeps the answer and its judgement for the next bisect."""
        plan = build_plan(self.client, self.suite, prompt=self.prompt_id, version=version)
        judge_key = plan.judge.key() if plan.judge else ""
        runner = Runner(self.client.evals, self.gateway, plan, {"id": None, "judge_key": judge_key})
        row = await runner.run_unit(self.case, plan.models[0], 0)
        decided = row["status"] in ("pass", "fail")
        return {"passed": row["status"] == "pass", "score": row.get("score"), "reason": row.get("reason"),
                "reused": None, "decided": decided}

    async def _run_suite(self, version: int) -> dict[str, Any]:
        run = await version_run(self.client, self.suite, self.prompt_id, version, self.gateway)
        return self._scored(run)


async def abisect(client: Client, prompt: Any, *, case: str | int | None = None, suite: str | None = None,
                  min_score: float | None = None, good: int | None = None, bad: int | None = None,
                  branch: str | None = None, gateway: Any = None, progress: Any = None) -> dict[str, Any]:
    """Find the version that broke `case` (or brought the suite's score below `min_score`).
    `progress(done, most, "v7 pass")` is called as each version is settled."""
    if client.remote:  # the server runs it: its models, its keys, its runs and cache
        return await asyncio.to_thread(client.bisect_prompt, prompt, case=case, suite=suite, min_score=min_score,
                                       good=good, bad=bad, branch=branch)
    if (case is None) == (min_score is None):
        raise InvalidInput("say what broke: give ", Step.arg("case"), " (a case of the suite), or ",
                           Step.arg("min_score"), " (the score the suite should keep), not both")
    if min_score is not None and (isinstance(min_score, bool) or not 0 <= float(min_score) <= 100):
        raise InvalidInput(f"the minimum score is a number from 0 to 100; got {min_score!r}")
    prompt_id = client.store.prompts.prompt_id(prompt)
    head = client.get_prompt(prompt_id)
    branch = branch or "main"
    line = [v.version for v in reversed(client.history(prompt_id, branch=branch))]
    first, last = _ends(line, good, bad, head.name, branch)
    span = line[line.index(first): line.index(last) + 1]
    found_suite = get_suite(client, suite) if suite else suite_for_prompt(client, prompt_id)
    the_case = find_case(client, found_suite, case) if case is not None else None
    for version in span:  # every version the search may test, before the first call: nothing billed
        check_columns(client.evals, found_suite, client.get_prompt(prompt_id, version=version))
    own = gateway is None
    inner = LiveGateway(client) if own else gateway
    counting = CountingGateway(inner)
    probe = _Probe(client, found_suite, prompt_id, the_case, None if min_score is None else float(min_score), counting,
                   progress=progress, most=most_tests(len(span)))
    try:
        lo, hi = _known_bounds(probe, span)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            got = await probe.outcome(span[mid])
            if not got["decided"]:
                return _undecided(probe, span, span[mid], head.name, branch)
            lo, hi = (mid, hi) if got["passed"] else (lo, mid)
        # The end a one-way search never reached is tested now: it may not be what it is assumed to be.
        for end, should_pass in ((hi, False), (lo, True)):
            got = await probe.outcome(span[end])
            if not got["decided"]:
                return _undecided(probe, span, span[end], head.name, branch)
            if got["passed"] != should_pass:
                return _nothing(probe, span, never_failed=got["passed"], name=head.name, branch=branch)
    finally:
        if own:
            await inner.aclose()
    culprit, parent = span[hi], span[lo]
    diff = client.diff(prompt_id, parent, culprit)
    reason = probe.outcomes[culprit].get("reason")
    return _result(probe, culprit, parent, diff.unified, reason, True,
                   found_text(probe, head.name, branch, culprit, parent))


def bisect(client: Client, prompt: Any, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(abisect(client, prompt, **kwargs))


def find_case(client: Client, suite: dict[str, Any], case: str | int) -> dict[str, Any]:
    """A case of the suite by its number (as `promstack suite show` lists them), its key, or a
    piece of its input that only it contains."""
    evals = client.evals
    cases = list(evals.iter_cases(suite["id"]))
    text = str(case).strip()
    if text.isdigit():
        for c in cases:
            if c["idx"] == int(text):
                return c
        raise NotFound(f"suite {suite['name']!r} has no case {text}; its cases are numbered 0 to {len(cases) - 1}")
    by_key = [c for c in cases if c["case_key"] == text or (len(text) >= 6 and c["case_key"].startswith(text))]
    if len(by_key) == 1:
        return by_key[0]
    by_input = [c for c in cases if text.lower() in str(c.get("input") or "").lower()]
    if len(by_input) == 1:
        return by_input[0]
    if by_input:
        numbers = ", ".join(str(c["idx"]) for c in by_input[:8])
        raise InvalidInput(f"{len(by_input)} cases of suite {suite['name']!r} contain {text!r} (cases {numbers}); "
                           "name one by its number")
    raise NotFound(f"suite {suite['name']!r} has no case {text!r}: name a case by its number, its key, "
                   "or words of its input")


def _ends(line: list[int], good: int | None, bad: int | None, name: str, branch: str) -> tuple[int, int]:
    shown = f"v{line[0]}..v{line[-1]}" if line else "none"
    for given in (good, bad):
        if given is not None and given not in line:
            raise InvalidInput(f"v{given} is not on the history of {name!r} branch {branch!r} (its versions: {shown})")
    first = line[0] if good is None else good
    last = line[-1] if bad is None else bad
    if line.index(first) >= line.index(last):
        raise InvalidInput(f"the good version (v{first}) must come before the bad one (v{last}) on branch {branch!r}")
    return first, last


def _known_bounds(probe: _Probe, span: list[int]) -> tuple[int, int]:
    """The range narrowed by what finished runs already say, tested for nothing: the last known
    pass before the first known failure, and that failure."""
    known = {i: probe.known(v) for i, v in enumerate(span)}
    fails = [i for i, k in known.items() if k is not None and k.get("decided", True) and not k["passed"]]
    hi = fails[0] if fails else len(span) - 1
    # (a known pass at the newest version with no known failure: lo == hi, and the end check says
    # it never failed without testing anything)
    passes = [i for i, k in known.items() if k is not None and k.get("decided", True) and k["passed"] and i <= hi]
    lo = passes[-1] if passes else 0
    for i in sorted({lo, hi}):
        if known.get(i) is not None:
            probe.outcomes[span[i]] = {**known[i], "decided": True}
            probe.tested.append(span[i])
    return lo, hi


def _what(probe: _Probe) -> str:
    if probe.case is not None:
        return f"case {probe.case['idx']} ({_clip(probe.case.get('input'))!r})"
    return f"the score of suite {probe.suite['name']!r}"


def _tail(probe: _Probe) -> str:
    return f"{len(probe.tested)} version(s) tested, {probe.gateway.calls} model call(s)"


def found_text(probe: _Probe, name: str, branch: str, culprit: int, parent: int) -> str:
    if probe.case is not None:
        change = f"it passes at v{parent} and fails at v{culprit}"
    else:
        before, after = probe.outcomes[parent]["score"], probe.outcomes[culprit]["score"]
        change = f"{before} at v{parent}, {after} at v{culprit}, below {probe.min_score:g}"
    broke = "broke" if probe.case is not None else "dropped"
    return f"v{culprit} of {name!r} ({branch}) {broke} {_what(probe)}: {change} ({_tail(probe)})"


def _nothing(probe: _Probe, span: list[int], *, never_failed: bool, name: str, branch: str) -> dict[str, Any]:
    rng = f"v{span[0]}..v{span[-1]} of {name!r} ({branch})"
    if probe.case is not None:
        verb_ok, verb_bad = "passes", "fails"
    else:
        verb_ok, verb_bad = f"is at least {probe.min_score:g}", f"is below {probe.min_score:g}"
    if never_failed:
        text = (f"{_what(probe)} still {verb_ok} at v{span[-1]}, the newest version of {rng}: it never "
                f"went wrong there, so there is nothing to find ({_tail(probe)})")
    else:
        text = (f"{_what(probe)} already {verb_bad} at v{span[0]}, the oldest version of {rng}: it was never "
                f"good there, so no version broke it; start from a version where it was good ({_tail(probe)})")
    return _result(probe, None, None, "", None, False, text)


def _undecided(probe: _Probe, span: list[int], version: int, name: str, branch: str) -> dict[str, Any]:
    why = probe.outcomes[version].get("reason") or "no reason recorded"
    text = (f"bisect stopped: {_what(probe)} could not be scored at v{version} of {name!r} ({branch}), so it "
            f"cannot say whether that version is good: {why} ({_tail(probe)})")
    return _result(probe, None, None, "", why, False, text)


def _result(probe: _Probe, culprit: int | None, parent: int | None, diff: str, reason: str | None,
            found: bool, text: str) -> dict[str, Any]:
    return Bisection(
        culprit=culprit, parent=parent, tested=list(probe.tested), model_calls=probe.gateway.calls, diff=diff,
        reason=reason, text=text, found=found, prompt_id=probe.prompt_id, name=probe.client.get_prompt(probe.prompt_id).name,
        suite=probe.suite["name"], case=None if probe.case is None else probe.case["case_key"],
        min_score=probe.min_score, outcomes={v: {k: o.get(k) for k in ("passed", "score", "reason", "reused")}
                                             for v, o in probe.outcomes.items()},
    ).to_dict()


def _clip(text: Any, n: int = CLIP) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= n else text[: n - 1] + "…"
