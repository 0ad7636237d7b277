"""Which version broke it, and what two versions do differently: `promstack bisect`, and the
printing of `promstack diff --behaviour` (the diff command itself lives with the other version
commands)."""

from __future__ import annotations

import shutil
import sys
import textwrap
from typing import Any

import click

from . import EXIT_CHECK_FAILED, as_json, cli, command_context


@cli.command("bisect")
@click.argument("prompt")
@click.option("--case", "case", help="The case that broke: its number (as `promstack suite show` lists them), "
              "its key, or words of its input.")
@click.option("--suite", "-s", help="The suite (default: the one tied to the prompt).")
@click.option("--min-score", type=click.FloatRange(0, 100), help="Instead of --case: the suite score 0-100 a "
              "good version keeps.")
@click.option("--good", type=int, help="A version known to be good (default: the branch's oldest).")
@click.option("--bad", type=int, help="A version known to be bad (default: the branch's head).")
@click.option("--branch", "-b", help="Whose history to search (default: main).")
@command_context
def bisect_cmd(state: Any, prompt: str, case: str | None, suite: str | None, min_score: float | None,
               good: int | None, bad: int | None, branch: str | None) -> None:
    """Find the first version of PROMPT where a case went from pass to fail (or the suite's score
    fell below --min-score), testing few versions and reusing finished runs and the cache. Prints
    the culprit, the judge's reason and its diff against its parent; exit 1 when nothing broke in
    the range.

    \b
    promstack bisect support/refund --case 3
    promstack bisect support/refund --case "refund" --good 4 --bad 12
    promstack bisect support/refund --suite regression --min-score 80
    """
    from promstack.evals.bisect import bisect
    from promstack.schemas import BisectResult

    def progress(done: int, most: int, said: str) -> None:
        if sys.stderr.isatty():  # quiet when piped
            click.echo(f"\r{done}/{most} versions tested, last {said}   ", err=True, nl=False)

    found = bisect(state.client, prompt, case=case, suite=suite, min_score=min_score, good=good, bad=bad,
                   branch=branch, progress=progress)
    if sys.stderr.isatty():
        click.echo("", err=True)
    # the contract's shape, the same from a local store and over a team server
    if not as_json(state, BisectResult.model_validate(found).model_dump()):
        click.echo(found["text"])
        if found["reason"]:
            click.echo(f"why: {found['reason']}")  # the judge's or an assertion's reason on the culprit
        if found["diff"]:
            click.echo("")
            color = sys.stdout.isatty()
            for line in found["diff"].splitlines():
                fg = "green" if line.startswith("+") else "red" if line.startswith("-") else None
                click.echo(click.style(line, fg=fg) if color and fg else line)
    if not found["found"]:
        sys.exit(EXIT_CHECK_FAILED)


def show_behaviour(data: dict[str, Any]) -> None:
    """A behaviour diff for people: the summary, then each case (changed most first) with the two
    outputs side by side and the judge's verdict in both orders."""
    click.echo(data["text"])
    width = max(60, min(shutil.get_terminal_size((120, 24)).columns, 200))
    half = (width - 3) // 2
    a, b = f"A v{data['from_version']}", f"B v{data['to_version']}"
    for case in data["cases"]:
        winner = {"a": f"{a} better", "b": f"{b} better", "tie": "same"}[case["winner"]]
        orders = ""
        if case.get("verdict_ab"):
            orders = f"; A first: {case['verdict_ab']}, B first: {case['verdict_ba']}"
        click.echo("")
        click.echo(f"case {case['idx']} [{winner}, changed {case['margin']:.2f}{orders}] {case['input']!r}")
        left = textwrap.wrap(case["output_a"], half) or [""]
        right = textwrap.wrap(case["output_b"], half) or [""]
        click.echo(f"{a:<{half}} | {b}")
        for i in range(max(len(left), len(right))):
            lhs = left[i] if i < len(left) else ""
            rhs = right[i] if i < len(right) else ""
            click.echo(f"{lhs:<{half}} | {rhs}")
        if case["reason"]:
            click.echo(f"{'judge' if case.get('verdict_ab') else 'why'}: {case['reason']}")
