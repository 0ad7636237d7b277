"""The benchmarks run (tiny sizes, no timing asserted): `make bench` must not rot unnoticed."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import __main__ as runner  # noqa: E402
from bench import bench_store  # noqa: E402


def test_the_runner_finds_every_bench_module(capsys):
    names = runner.discover([])
    assert "bench_store" in names
    assert names == sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    assert runner.discover(["store"]) == ["bench_store"]
    assert runner.main(["--list"]) == 0
    assert "bench_store" in capsys.readouterr().out
    assert runner.main(["no-such-bench"]) == 2


def test_bench_store_runs_and_prints_every_figure(capsys, monkeypatch):
    monkeypatch.delenv("PROMSTACK_SYNC", raising=False)
    code = bench_store.main(["--saves", "60", "--full-saves", "5", "--runs", "1"])
    out = capsys.readouterr().out
    assert code in (0, 1)  # 1: a goal missed on this machine, which is a figure, not a failure
    for figure in ("cores, Python", "bare sqlite3 INSERT + COMMIT", "PromptStore.save", "ours / bare",
                   "synchronous=FULL", "WAL pages written per save", "history, newest 50",
                   "get_prompt(id=42, version=n)", "store.diff.word_diff", "per 1,000 versions of a 2 KB prompt"):
        assert figure in out, figure
    import os

    assert "PROMSTACK_SYNC" not in os.environ  # the bench restores what it changed


def test_the_diff_texts_differ_in_one_percent_of_lines():
    old, new, changed = bench_store.diff_texts()
    assert 99_000 <= len(old) <= 101_000
    old_lines, new_lines = old.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    assert sum(a != b for a, b in zip(old_lines, new_lines, strict=True)) == changed == round(len(old_lines) / 100)


def test_bench_mcp_context_counts_the_tool_list(capfd):  # the MCP stdio client needs a real stderr
    from bench import bench_mcp_context

    code = bench_mcp_context.main(["--no-references", "--per-tool"])
    out = capfd.readouterr().out
    assert code == 0  # a token count is deterministic: a miss is a real one
    for figure in ("model-facing part (name, description, inputSchema)", "promstack mcp", "26 tools",
                   "ratio to the goal", "run_tests"):
        assert figure in out, figure


def test_bench_check_prints_every_figure(capsys):
    from bench import bench_check

    code = bench_check.main(["--saves", "2", "--cli-saves", "1"])
    out = capsys.readouterr().out
    assert code in (0, 1)  # 1: a goal missed on this machine, which is a figure, not a failure
    for figure in ("SDK save -> annotation (2 saves): p50", "x ideal", "CLI save -> annotation (1 saves",
                   "burst of 20 saves in 2 s:", "checks ran", "model calls"):
        assert figure in out, figure
