"""The CLI core: every command, --json on reads, exit codes 0/1/2, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from promstack.cli import cli


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None, code: int = 0):
        result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    return invoke


@pytest.fixture
def refund(run):
    run("prompt", "create", "support/refund", "-t", "환불 절차를 안내하세요: {{ question }}", "--model", "gpt-4o-mini")
    run("prompt", "update", "support/refund", "-t", "환불 절차를 친절하게 안내하세요: {{ question }}", "-m", "kinder")
    return "support/refund"


def test_init_creates_the_store_here(run, tmp_path, monkeypatch):
    monkeypatch.delenv("PROMSTACK_DB")
    result = run("init", str(tmp_path / "proj"))
    assert (tmp_path / "proj" / ".promstack" / "promstack.db").exists()
    assert (tmp_path / "proj" / ".promstack" / ".gitignore").read_text() == "*\n"
    assert "Initialised" in result.stdout


def test_create_update_show_and_dedupe(run, refund):
    shown = json.loads(run("prompt", "show", refund, "--json").stdout)
    assert shown["version"] == 2 and shown["message"] == "kinder"
    assert shown["model_config"] == {"model": "gpt-4o-mini"}
    assert [v["name"] for v in shown["variables"]] == ["question"]
    same = run("prompt", "update", refund, "-t", "환불 절차를 친절하게 안내하세요: {{ question }}")
    assert "No change" in same.stdout
    first = json.loads(run("prompt", "show", refund, "--version", "1", "--json").stdout)
    assert first["template"] == "환불 절차를 안내하세요: {{ question }}"


def test_update_model_only_keeps_template_and_other_keys(run, refund):
    run("prompt", "update", refund, "--temperature", "0.3")
    shown = json.loads(run("prompt", "show", refund, "--json").stdout)
    assert shown["version"] == 3
    assert shown["model_config"] == {"model": "gpt-4o-mini", "temperature": 0.3}
    assert shown["template"] == "환불 절차를 친절하게 안내하세요: {{ question }}"


def test_template_from_file_and_stdin(run, tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("From a file {{ x }}", encoding="utf-8")
    run("prompt", "create", "from/file", "-f", str(path))
    run("prompt", "update", "from/file", "-f", "-", input="From stdin {{ x }}")
    assert json.loads(run("prompt", "show", "from/file", "--json").stdout)["template"] == "From stdin {{ x }}"


def test_history_diff_rollback(run, refund):
    history = json.loads(run("history", refund, "--json").stdout)
    assert [v["version"] for v in history] == [2, 1]
    diff = json.loads(run("diff", refund, "1", "2", "--json").stdout)
    assert diff["added"] == 1 and diff["removed"] == 1
    assert [1, "친절하게 "] in diff["words"]
    words = run("diff", refund, "1", "2", "--words")
    assert "{+친절하게 +}" in words.stdout
    rolled = json.loads(run("rollback", refund, "1", "--json").stdout)
    assert rolled["version"] == 3 and rolled["source"] == "rollback"
    assert rolled["template"] == "환불 절차를 안내하세요: {{ question }}"


def test_branch_merge_and_conflict_exit_code(run, refund):
    run("branch", "create", refund, "exp")
    run("prompt", "update", refund, "-b", "exp", "-t", "환불 절차를 친절하게 안내하세요: {{ question }}\n주문번호를 물어보세요.")
    branches = json.loads(run("branch", "list", refund, "--json").stdout)
    assert {b["name"]: b["head"] for b in branches} == {"main": 2, "exp": 3}
    merged = json.loads(run("merge", refund, "exp", "--json").stdout)
    assert merged["version"] == 4 and merged["source"] == "merge"
    assert merged["template"].endswith("주문번호를 물어보세요.")
    # Both sides change the same words: a conflict is exit 1 and writes nothing.
    run("branch", "create", refund, "exp2")
    run("prompt", "update", refund, "-b", "exp2", "-t", "환불 절차를 빠르게 안내하세요: {{ question }}\n주문번호를 물어보세요.")
    run("prompt", "update", refund, "-t", "환불 절차를 자세히 안내하세요: {{ question }}\n주문번호를 물어보세요.")
    conflict = run("merge", refund, "exp2", code=1)
    assert "conflict" in conflict.stderr
    assert json.loads(run("prompt", "show", refund, "--json").stdout)["version"] == 6


def test_labels(run, refund):
    # production is a gated environment: with no suite to pass, `label set` is refused (exit 1,
    # nothing moved); --force needs a reason (exit 2); forced with a reason it moves, audited.
    refused = run("label", "set", refund, "production", "1", "-r", "first release", code=1)
    assert "the production gate refused" in refused.stdout and "could not run the suite" in refused.stdout
    assert json.loads(run("label", "list", refund, "--json").stdout) == {"latest": 2}
    assert "needs a reason (--reason)" in run("label", "set", refund, "production", "1", "--force", code=2).stderr
    run("label", "set", refund, "production", "1", "-r", "first release", "--force")
    run("label", "set", refund, "production", "2", "--force", "-r", "second release")
    run("label", "set", refund, "canary", "2")  # not an environment: moves freely
    assert json.loads(run("label", "list", refund, "--json").stdout) == {"latest": 2, "canary": 2, "production": 2}
    moves = json.loads(run("label", "history", refund, "production", "--json").stdout)
    assert [(m["from_version"], m["to_version"]) for m in moves] == [(1, 2), (None, 1)]
    back = json.loads(run("label", "rollback", refund, "production", "--json").stdout)
    assert back["to_version"] == 1
    at = json.loads(run("label", "at", refund, "production", moves[0]["at"], "--json").stdout)
    assert at["version"] == 2


def test_list_delete_restore(run, refund):
    run("prompt", "create", "shared/tone", "-t", "Be kind.")
    listing = json.loads(run("prompt", "list", "--json").stdout)
    assert [p["name"] for p in listing] == ["shared/tone", "support/refund"]
    text = run("prompt", "list").stdout
    assert "support/\n  refund" in text
    run("prompt", "delete", refund)
    assert [p["name"] for p in json.loads(run("prompt", "list", "--json").stdout)] == ["shared/tone"]
    gone = run("prompt", "show", refund, code=2)
    assert "restore" in gone.stderr
    run("prompt", "restore", refund)
    assert json.loads(run("prompt", "show", refund, "--json").stdout)["version"] == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("prompt", "show", "nope"), "no prompt 'nope'"),
        (("prompt", "show", "support/refund", "--version", "9"), "no version 9; its newest is 2"),
        (("prompt", "show", "support/refund", "--version", "1", "--label", "production"), "not version and label"),
        (("prompt", "show", "support/refund", "--label", "prod"), "no label 'prod'"),
        (("prompt", "create", "bad name", "-t", "x"), "not a valid prompt name"),
        (("prompt", "create", "empty", "-t", "   "), "empty"),
        (("prompt", "update", "support/refund", "--config", "{not json"), "not JSON"),
        (("branch", "create", "support/refund", "has space"), "not a valid branch name"),
        (("label", "set", "support/refund", "has space", "1"), "not a valid label name"),
        (("merge", "support/refund", "main"), "into itself"),
        (("rollback", "support/refund", "2"), "already the head"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(run, refund, args, needle):
    before = json.loads(run("export").stdout)
    result = run(*args, code=2)
    assert needle in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("promstack: ")
    assert json.loads(run("export").stdout) == before


def test_binary_template_file_is_refused(run, tmp_path):
    path = tmp_path / "bin.txt"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert "UTF-8" in run("prompt", "create", "bin", "-f", str(path), code=2).stderr


def test_export_round_trips(run, refund, tmp_path):
    out = tmp_path / "backup.json"
    run("export", str(out))
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["format"] == "promstack/1"
    assert [v["version"] for v in document["prompts"][0]["versions"]] == [1, 2]


def test_real_process_prints_no_traceback(tmp_path):
    """Outside pytest's process, an error is still one line and exit 2."""
    env = {**os.environ, "PROMSTACK_DB": str(tmp_path / "s.db")}
    env.pop("PROMSTACK_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-c", "from promstack.cli import main; main()", "prompt", "show", "missing"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("promstack: there is no prompt 'missing'")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("debug", [None, "1"])
def test_an_unexpected_error_is_one_line_unless_debugging(monkeypatch, debug):
    """Tests run with PROMSTACK_DEBUG=1 (conftest) so that bugs re-raise; users get one line, exit 70."""
    import click

    from promstack.cli import handle_errors

    @click.command()
    @handle_errors
    def broken() -> None:
        raise KeyError("oops")

    if debug is None:
        monkeypatch.delenv("PROMSTACK_DEBUG", raising=False)
    else:
        monkeypatch.setenv("PROMSTACK_DEBUG", debug)
    result = CliRunner().invoke(broken, [])
    if debug is None:
        assert result.exit_code == 70 and result.exception.__class__ is SystemExit
        assert result.stderr == "promstack: unexpected error: KeyError: 'oops' (PROMSTACK_DEBUG=1 shows where)\n"
    else:
        assert isinstance(result.exception, KeyError)


def test_db_flag_wins_over_the_environment(run, tmp_path):
    other = tmp_path / "other.db"
    run("--db", str(other), "prompt", "create", "elsewhere", "-t", "x")
    run("prompt", "create", "here", "-t", "y")
    assert [p["name"] for p in json.loads(run("prompt", "list", "--db", str(other), "--json").stdout)] == ["elsewhere"]
    assert [p["name"] for p in json.loads(run("--db", str(other), "prompt", "list", "--json").stdout)] == ["elsewhere"]
    assert [p["name"] for p in json.loads(run("prompt", "list", "--json").stdout)] == ["here"]


def test_history_checkpoints_folds_unnamed_saves(run, refund):
    for i in range(3):
        run("prompt", "update", refund, "-t", f"draft {i} {{{{ question }}}}")
    run("prompt", "update", refund, "-t", "final {{ question }}", "-m", "ready for review")
    run("prompt", "update", refund, "-t", "final! {{ question }}")
    folded = json.loads(run("history", refund, "--checkpoints", "--json").stdout)
    kinds = [(e["kind"], e["version"]["version"] if e["kind"] == "version" else e["count"]) for e in folded]
    assert kinds == [("version", 7), ("version", 6), ("folded", 3), ("version", 2), ("version", 1)]
    text = run("history", refund, "--checkpoints").stdout
    assert "3 unnamed saves (v3-v5)" in text


def test_every_command_prints_json_or_text_through_one_helper():
    """The CLI's JSON-or-text choice and its JSON-object options are written once
    (promstack.cli.as_json / emit / json_object_option), not in each command."""
    from pathlib import Path

    import promstack.cli as package

    for module in Path(package.__file__).parent.glob("*.py"):
        source = module.read_text(encoding="utf-8")
        if module.name != "__init__.py":
            assert "emit_json(" not in source, module
            assert "must be a JSON object" not in source, module


def test_json_or_text_helpers(capsys):
    from promstack.cli import Context, as_json, emit, json_object_option
    from store.errors import InvalidInput

    emit(Context(None, json_output=True), {"a": 1}, "text")
    emit(Context(None), {"a": 1}, "text")
    emit(Context(None), {"a": 1}, lambda data: print("fn", data["a"]))
    assert capsys.readouterr().out == '{\n  "a": 1\n}\ntext\nfn 1\n'
    assert as_json(Context(None, json_output=True), []) is True and as_json(Context(None), []) is False
    assert json_object_option('{"x": 1}', "--vars", "{}") == {"x": 1}
    with pytest.raises(InvalidInput, match=r"--vars must be a JSON object such as \{\}"):
        json_object_option("[1]", "--vars", "{}")
