"""Tests, the judge and the arena: `promstack suite|test|evaluate|judge|arena|runs|vote`.

The guide's CI lines work as written:

    promstack test --suite regression
    score=$(promstack evaluate --prompt 42); if [ $score -lt 80 ]; then exit 1; fi
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from promstack.evals.score import PASS_SCORE, evaluate_verdict, unscored_sentence

from . import EXIT_CHECK_FAILED, as_json, cli, command_context, fail, warn

if TYPE_CHECKING:
    from promstack.client import Client

EXIT_INTERRUPTED = 130


def _split_models(values: tuple[str, ...]) -> list[str]:
    return [m.strip() for v in values for m in v.split(",") if m.strip()]


def _limits(values: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for item in values:
        model, sep, n = item.rpartition("=")
        if not sep or not model or not n.strip().isdigit():
            fail(f"--model-limit {item!r} must look like MODEL=N, e.g. openai/gpt-4o=5")
        out[model.strip()] = int(n)
    return out


def _criteria(path: str | None) -> Any:
    if path is None:
        return None
    from promstack.evals.judge import read_judge_file

    return read_judge_file(path)


@contextlib.contextmanager
def progress_bar(label: str, quiet: bool = False) -> Iterator[Any]:
    """A progress bar on a terminal (stderr); nothing when piped or quiet."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    failed = [0]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failed]} not passed"), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None, failed=0)

        def update(done: int, total: int, status: str) -> None:
            if status and status != "pass":
                failed[0] += 1
            bar.update(task, completed=done, total=total, failed=failed[0])

        yield update


def _latest_interrupted(client: Client) -> str | None:
    runs = client.list_runs(limit=1)  # the server's runs, with PROMSTACK_URL
    return runs[0]["id"] if runs and runs[0]["status"] != "done" else None


def _print_summary(run: dict[str, Any], *, out: Any = None) -> None:
    echo = (lambda text="": click.echo(text, err=True)) if out == "err" else click.echo
    s = run["summary"]
    lat = s["latency_ms"]
    models = ", ".join(run["models"])
    echo(f"Run {run['id']}: suite {run['suite_name']!r}, prompt {run['prompt_id']} v{run['prompt_version']}, "
         f"{models}" + (f", x{run['repeat']}" if run["repeat"] > 1 else ""))
    score = "unscored" if s.get("score") is None else f"{s['score']:.1f}/100"
    echo(f"  passed {s['passed']}/{s['results']} ({s['pass_rate']:.0%})  failed {s['failed']}  "
         f"errors {s['errors']}  unchecked {s['unchecked']}  score {score}")
    if s.get("unscored"):
        echo(f"  {unscored_sentence(s)}")
    echo(f"  tokens {s['input_tokens']:,} in / {s['output_tokens']:,} out  cost ${s['cost_usd']:.4f}  "
         f"cache hits {s['cache_hits']}")
    if s.get("unpriced_note"):
        echo(f"  cost leaves out {s['unpriced_note']}")
    if lat.get("p50") is not None:
        echo(f"  latency p50 {lat['p50']:.0f} ms  p90 {lat['p90']:.0f} ms  p95 {lat['p95']:.0f} ms  "
             f"p99 {lat['p99']:.0f} ms")
    if len(s.get("models", {})) > 1:
        for model, m in s["models"].items():
            score = "unscored" if m.get("score") is None else f"{m['score']:.1f}"
            echo(f"  {model}: {m['passed']}/{m['results']} passed, score {score}")
    if s.get("criteria"):
        echo("  Judge, per criterion (mean over the judged cases):")
        for c in s["criteria"]:
            echo(f"    {c['percent']:5.1f}/100  (mean {c['score']:.2f})  {c['criterion']}")
    if s["failing"]:
        echo("  Not passed:")
        for f in s["failing"]:
            where = f"case {f['case']}" + (f" #{f['repeat']}" if f["repeat"] else "") + f" [{f['model']}]"
            status = "UNSCORED" if f["status"] == "error" else f["status"].upper()
            echo(f"    {status:9} {where}: {f['input']!r}")
            echo(f"              why: {f['why']}")
            for c in f.get("criteria") or []:
                echo(f"              {c['score']:g} ({c['percent']:.0f}/100) {c['criterion']}: {c['reason']}")
        shown = len(s["failing"])
        rest = s["results"] - s["passed"] - shown
        if rest > 0:
            echo(f"    ... and {rest} more (promstack runs {run['id']} --json, or --output results.json)")
    if not s["complete"]:
        echo(f"  INCOMPLETE: {s['results']} of {s['total']} done; finish with: promstack test --resume {run['id']}")


# ---- suites -----------------------------------------------------------------------------------


@cli.group("suite")
def suite_group() -> None:
    """Test suites: CSV (input,expected_output,...), JSON or JSONL.

    \b
    promstack suite import tests/prompts/regression.csv --prompt 42
    promstack suite list
    promstack suite show regression
    """


@suite_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--name", help="Suite name (default: the file's name without extension).")
@click.option("--prompt", help="The prompt this suite tests by default (id or name).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl"]), help="Default: from the extension.")
@command_context
def suite_import(ctx: Any, file: str, name: str | None, prompt: str | None, fmt: str | None) -> None:
    """Import (or replace) a suite from FILE ('-' reads stdin; then give --name and --format)."""

    if file == "-":
        if not name or not fmt:
            fail("reading cases from stdin needs --name and --format")
        data = sys.stdin.buffer.read()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            fail(f"<stdin> line {line}: not UTF-8 text; save it as UTF-8")
        suite = ctx.client.tests.import_suite(text=text, fmt=fmt, name=name, prompt=prompt)
    else:
        suite = ctx.client.tests.import_suite(file, fmt=fmt, name=name, prompt=prompt)
    if as_json(ctx, suite):
        return
    tied = f", tied to prompt {suite['prompt_id']}" if suite["prompt_id"] else ""
    click.echo(f"Imported suite {suite['name']!r}: {suite['case_count']} cases{tied}")


@suite_group.command("list")
@command_context
def suite_list(ctx: Any) -> None:
    """The suites in the store (and tests/prompts/ of the workspace)."""

    suites = ctx.client.tests.list_suites()
    if as_json(ctx, suites):
        return
    if not suites:
        click.echo("No suites yet: put one in tests/prompts/<name>.csv or run 'promstack suite import FILE'")
    for s in suites:
        tied = f"prompt {s['prompt_id']}" if s["prompt_id"] else "no prompt"
        click.echo(f"{s['name']:24} {s['case_count']:>7} cases  {tied:12} {s['source']}")


@suite_group.command("show")
@click.argument("name")
@click.option("--limit", default=20, show_default=True, help="Cases to show.")
@command_context
def suite_show(ctx: Any, name: str, limit: int) -> None:
    """A suite's settings and its first cases."""

    suite = ctx.client.tests.show_suite(name, limit=limit)
    if as_json(ctx, suite):
        return
    click.echo(f"Suite {suite['name']!r}: {suite['case_count']} cases from {suite['source']}"
               + (f", prompt {suite['prompt_id']}" if suite["prompt_id"] else ""))
    if suite["config"]:
        click.echo(f"  settings: {json.dumps(suite['config'], ensure_ascii=False)}")
    for case in suite["cases"]:
        extra = f"  vars={json.dumps(case['variables'], ensure_ascii=False)}" if case["variables"] else ""
        checks = f"  assert={len(case['assertions'])}" if case["assertions"] else ""
        click.echo(f"  {case['idx']:>4}  {case['input']!r} -> {case['expected']!r}{extra}{checks}")


# ---- test / evaluate / judge ----------------------------------------------------------------------


def _run_options(func: Any) -> Any:
    options = [
        click.option("--prompt", help="Prompt id or name (default: the suite's prompt)."),
        click.option("--version", type=int, help="Prompt version (default: head of main)."),
        click.option("--label", help="Test the version a label points at (e.g. staging)."),
        click.option("--model", "models", multiple=True, help="Model(s) to test; repeat or comma-separate."),
        click.option("--concurrency", default=10, show_default=True, help="Calls in flight at once."),
        click.option("--model-limit", "model_limits", multiple=True, help="Per-model limit, MODEL=N."),
        click.option("--repeat", default=1, show_default=True, help="Runs of every case (flaky outputs)."),
        click.option("--retries", default=0, show_default=True, help="Retries of a case whose call failed."),
        click.option("--criteria", type=click.Path(dir_okay=False), help="Judge file: {\"criteria\": [...], \"scoring\": \"1-5\"}."),
        click.option("--judge-model", help="Model that judges (default: the suite's, else the tested one)."),
        click.option("--threshold", type=float,
                     help=f"Judge score 0-100 at which a case passes (default {PASS_SCORE:g}, the deploy gate's)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run_kwargs(prompt, version, label, models, concurrency, model_limits, repeat, retries, criteria,
                judge_model, threshold):
    return dict(prompt=prompt, version=version, label=label, models=_split_models(models),
                concurrency=concurrency, model_limits=_limits(model_limits), repeat=repeat, retries=retries,
                criteria=_criteria(criteria), judge_model=judge_model, threshold=threshold)


@cli.command("test")
@click.option("--suite", help="Suite name (tests/prompts/<suite>.csv or the store); default: the prompt's.")
@_run_options
@click.option("--resume", "resume", metavar="RUN", help="Finish an interrupted run.")
@click.option("--min-pass", default="100%", show_default=True, help="Pass rate under which the exit code is 1.")
@click.option("--output", type=click.Path(dir_okay=False), help="Write results.json, junit.xml or results.csv.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Processes sharing the run, the calls in flight split between them "
                   "(default: [tests] workers in config, else 1).")
@command_context
def test_cmd(ctx: Any, suite: str | None, prompt, version, label, models, concurrency, model_limits,
             repeat, retries, criteria, judge_model, threshold, resume: str | None, min_pass: str,
             output: str | None, quiet: bool, workers: int | None) -> None:
    """Run a test suite: every case x model through the gateway, judged, stored as a run.

    \b
    promstack test --suite regression
    promstack test --suite regression --prompt 42 --model openai/gpt-4o-mini --model anthropic/claude-3-5-haiku-latest
    promstack test --resume r20261125-193600-1a2b3c
    Exit code 1 when the pass rate is under --min-pass (default 100%).
    """
    import asyncio

    from promstack.evals.score import parse_min_pass, run_verdict

    threshold_rate = parse_min_pass(min_pass)
    if resume is None and not suite and not prompt:
        fail("say which suite: --suite NAME, or --prompt P for the suite tied to it (or --resume RUN)")
    try:
        with progress_bar("testing", quiet or ctx.json) as progress:
            if resume:
                if suite or prompt or models or version or label:
                    fail("--resume finishes a run as it was started: drop --suite/--prompt/--model/--version/--label")
                run = asyncio.run(ctx.client.tests.aresume_run(resume, progress=progress, warn=warn,
                                                               retries=retries or None, concurrency=concurrency,
                                                               workers=workers))
            else:
                run = asyncio.run(ctx.client.tests.arun_tests(
                    suite, progress=progress, warn=warn, workers=workers,
                    **_run_kwargs(prompt, version, label, models, concurrency, model_limits, repeat,
                                  retries, criteria, judge_model, threshold)))
    except KeyboardInterrupt:
        run_id = _latest_interrupted(ctx.client)
        click.echo(f"promstack: interrupted; finished results are kept. Resume with: promstack test --resume {run_id}",
                   err=True)
        sys.exit(EXIT_INTERRUPTED)
    if output:
        from promstack.evals.report import write_report

        path = write_report(ctx.client.evals, run, output)
        click.echo(f"promstack: wrote {path}", err=True)
    verdict = run_verdict(run, threshold_rate)
    ok = verdict["passed"]
    if not as_json(ctx, {**run, "passed": ok, "min_pass": threshold_rate, "threshold": verdict["threshold"],
                         "verdict": verdict["text"]}):
        _print_summary(run)
        click.echo(verdict["text"])
    if not ok:
        sys.exit(EXIT_CHECK_FAILED)


@cli.command("evaluate")
@click.option("--prompt", required=True, help="Prompt id or name, e.g. 42.")
@click.option("--suite", help="Suite (default: the one tied to the prompt).")
@click.option("--version", type=int, help="Prompt version (default: head of main).")
@click.option("--label", help="Evaluate the version a label points at.")
@click.option("--model", "models", multiple=True, help="Model(s); repeat or comma-separate.")
@click.option("--concurrency", default=10, show_default=True)
@click.option("--retries", default=0, show_default=True)
@click.option("--criteria", type=click.Path(dir_okay=False), help="Judge file (default: the suite's).")
@click.option("--judge-model", help="Model that judges.")
@click.option("--threshold", type=float,
              help=f"Judge score 0-100 at which a case passes (default {PASS_SCORE:g}).")
@command_context
def evaluate_cmd(ctx: Any, prompt: str, suite: str | None, version, label, models, concurrency, retries,
                 criteria, judge_model, threshold) -> None:
    """Score a prompt 0-100 on its suite: prints a bare integer on stdout, details on stderr.

    \b
    score=$(promstack evaluate --prompt 42)
    if [ $score -lt 80 ]; then exit 1; fi
    When the judge (or the model) could not score a case, nothing is printed on stdout, the
    reason goes to stderr and the exit code is 1, so a `bash -e` job stops there.
    """
    with progress_bar("evaluating", ctx.json) as progress:
        result = ctx.client.tests.evaluate(
            prompt, suite=suite, version=version, label=label, models=_split_models(models),
            concurrency=concurrency, retries=retries, criteria=_criteria(criteria), judge_model=judge_model,
            threshold=threshold, warn=warn, progress=progress,
        )
    if as_json(ctx, result):
        if result["score"] is None:
            sys.exit(EXIT_CHECK_FAILED)
        return
    _print_summary(result["run"], out="err")
    said = evaluate_verdict(result["run"]["summary"])
    if result["score"] is None:
        fail(f"prompt {prompt}: {said}; see promstack runs {result['run']['id']}", EXIT_CHECK_FAILED)
    click.echo(said, err=True)
    click.echo(str(result["score"]))


@cli.command("judge")
@click.argument("run_id", metavar="RUN")
@click.option("--criteria", type=click.Path(dir_okay=False), required=True,
              help='Judge file: {"criteria": [...], "scoring": "1-5"}.')
@click.option("--judge-model", help="Model that judges (default: the run's).")
@click.option("--threshold", type=float,
              help=f"Judge score 0-100 at which a case passes (default {PASS_SCORE:g}).")
@click.option("--concurrency", default=10, show_default=True)
@command_context
def judge_cmd(ctx: Any, run_id: str, criteria: str, judge_model: str | None, threshold: float | None,
              concurrency: int) -> None:
    """Judge the outputs of test run RUN against criteria (no model is called again).

    \b
    promstack judge r20261125-193600-1a2b3c --criteria judge.json
    """
    import asyncio


    with progress_bar("judging", ctx.json) as progress:
        run = asyncio.run(ctx.client.tests.ajudge_run(run_id, _criteria(criteria), judge_model=judge_model,
                                                      threshold=threshold, concurrency=concurrency, progress=progress))
    if as_json(ctx, run):
        return
    _print_summary(run)


# ---- arena ----------------------------------------------------------------------------------------


@cli.command("arena")
@click.option("--prompt", help="Prompt id or name (default: the suite's prompt).")
@click.option("--suite", help="Suite whose cases every model answers.")
@click.option("--models", "models", multiple=True, help="Two or more models, comma-separated.")
@click.option("--version", type=int, help="Prompt version (default: head of main).")
@click.option("--label", help="Use the version a label points at.")
@click.option("--criteria", type=click.Path(dir_okay=False), help="Judge file (default: the suite's).")
@click.option("--judge-model", help="Model that judges, never one of those compared (default: the suite's judge model, else the prompt's own model, whichever is not competing).")
@click.option("--concurrency", default=10, show_default=True)
@click.option("--seed", type=int, help="Seed for the order shown to the judge (default: random).")
@click.option("--resume", metavar="RUN", help="Finish an interrupted arena run.")
@command_context
def arena_cmd(ctx: Any, prompt, suite, models, version, label, criteria, judge_model, concurrency, seed,
              resume) -> None:
    """Blind model comparison: every pair answers every case; the judge sees both orders.

    \b
    promstack arena --prompt 42 --suite regression --models openai/gpt-4o,anthropic/claude-3-5-sonnet-latest,gemini/gemini-1.5-pro
    """
    import asyncio

    if not resume and not suite:
        fail("say which suite: --suite NAME (or --resume RUN)")
    try:
        with progress_bar("arena", ctx.json) as progress:
            run = asyncio.run(ctx.client.tests.arun_arena(
                suite=suite, models=_split_models(models), prompt=prompt, version=version,
                label=label, criteria=_criteria(criteria), judge_model=judge_model, concurrency=concurrency,
                seed=seed, resume=resume, progress=progress))
    except KeyboardInterrupt:
        run_id = _latest_interrupted(ctx.client)
        click.echo(f"promstack: interrupted. Resume with: promstack arena --resume {run_id}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if as_json(ctx, run):
        return
    print_arena(run)


def print_arena(run: dict[str, Any]) -> None:
    a = run["arena"]
    click.echo(f"Arena {run['id']}: suite {run['suite_name']!r}, prompt {run['prompt_id']} v{run['prompt_version']}, "
               f"{a['judged']} matches judged ({a['errors']} errors)")
    click.echo(a["headline"]["models"])
    click.echo(f"승률 (win rate): {a['headline']['win_rates']}   share of wins: {a['headline']['shares']}")
    click.echo("")
    why = a.get("no_separation")
    if why:
        click.echo(why[0].upper() + why[1:] + ".")
    click.echo(f"{'model':36} {'win rate':>8} {'W-L-T':>11} {'rating':>7}  " + ("" if why else "95% CI"))
    for model in sorted(a["models"], key=lambda m: -(a["overall"][m]["win_rate"] or 0)):
        o, r = a["overall"][model], a["ratings"][model]
        wlt = f"{o['wins']}-{o['losses']}-{o['ties']}"
        ci = f"{r['ci_low']:.0f}..{r['ci_high']:.0f}" if r["ci_low"] is not None else ("" if why else "-")
        rate = f"{100 * o['win_rate']:.0f}%" if o["win_rate"] is not None else "-"
        human = a["human"]["overall"][model]
        humans = f"  people: {100 * human['win_rate']:.0f}% of {human['matches']}" if human["matches"] else ""
        click.echo(f"{model:36} {rate:>8} {wlt:>11} {r['rating']:>7.0f}  {ci}{humans}")
    for pair in a["pairs"].values():
        if pair["matches"]:
            click.echo(f"  {pair['a']} vs {pair['b']}: {100 * pair['win_rate_a']:.0f}% / {100 * pair['win_rate_b']:.0f}% "
                       f"({pair['wins_a']}-{pair['wins_b']}, {pair['ties']} ties)")
    if a["order_flip_rate"] is not None:
        click.echo(f"Judge order-flip rate: {a['order_flip_rate']:.0%} (verdicts that changed when the order was swapped; "
                   "high means position bias)")
    if a["human"]["votes"]:
        agree = a["human"]["agreement_with_judge"]
        click.echo(f"People's votes: {a['human']['votes']}" + (f", agreeing with the judge {agree:.0%}" if agree is not None else ""))


@cli.command("vote")
@click.argument("match_id", type=int)
@click.argument("winner")
@click.option("--voter", help="Who votes (default: you).")
@command_context
def vote_cmd(ctx: Any, match_id: int, winner: str, voter: str | None) -> None:
    """Record a person's verdict on arena match MATCH_ID: a model's name or 'tie'."""

    vote = ctx.client.tests.record_vote(match_id, winner, voter=voter)
    if as_json(ctx, vote):
        return
    click.echo(f"Recorded {vote['voter']}'s vote on match {match_id}: {winner}")


@cli.command("runs")
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option("--suite", help="Only runs of this suite.")
@click.option("--limit", default=20, show_default=True)
@command_context
def runs_cmd(ctx: Any, run_id: str | None, suite: str | None, limit: int) -> None:
    """List test and arena runs, or show one.

    \b
    promstack runs
    promstack runs r20261125-193600-1a2b3c --json
    """

    if run_id:
        run = ctx.client.tests.get_run(run_id)
        if as_json(ctx, run):
            return
        if run["kind"] == "arena":
            print_arena(run)
        else:
            _print_summary(run)
        return
    runs = ctx.client.list_runs(suite=suite, limit=limit)
    if as_json(ctx, runs):
        return
    for r in runs:
        s = r["summary"] or {}
        score = "unscored" if s.get("score") is None else f"{s['score']:.0f}"
        detail = f"pass {s.get('pass_rate', 0):.0%} score {score}" if r["kind"] == "test" and s else ""
        click.echo(f"{r['id']}  {r['kind']:5} {r['status']:11} {r['suite_name']:16} prompt {r['prompt_id']} "
                   f"v{r['prompt_version']}  {','.join(r['models'])}  {detail}")
