"""`promstack watch`, `status`, `checkpoint` and `import` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from promstack import Client
from promstack.cli import cli


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_import_prompt_files_by_their_path_under_prompts(prompts_dir, isolated_store):
    (prompts_dir / "support").mkdir()
    (prompts_dir / "support" / "refund.prompt.md").write_text("---\nmodel: gpt-4o\n---\nRefund ${input:item}\n")
    (prompts_dir / "sum.prompt.yml").write_text("model: gpt-4o-mini\nmessages:\n  - role: user\n    content: '{{input}}'\n")
    result = run("import", "prompts/support/refund.prompt.md", "prompts/sum.prompt.yml")
    assert result.exit_code == 0, result.output
    assert "Imported support/refund v1" in result.output
    with Client(isolated_store) as client:
        assert client.get_prompt("support/refund").model_config == {"model": "gpt-4o"}
        assert client.get_prompt("sum").template == [{"role": "user", "content": "{{input}}"}]
    again = run("import", "prompts/support/refund.prompt.md")
    assert "Unchanged support/refund v1" in again.output
    named = run("--db", str(isolated_store), "import", "prompts/sum.prompt.yml", "--name", "other/name", "--json")
    assert json.loads(named.output)[0]["prompt"] == "other/name"


def test_import_of_an_export_json_goes_to_the_store_import(tmp_path, isolated_store):
    with Client(isolated_store) as client:
        client.create_prompt("a", "A text")
        document = client.export()
    other = tmp_path / "other" / ".promstack" / "promstack.db"
    (tmp_path / "backup.json").write_text(json.dumps(document))
    result = run("import", "backup.json", "--db", str(other))
    assert result.exit_code == 0, result.output
    assert "1 prompts" in result.output
    with Client(other) as client:
        assert client.get_prompt("a").template == "A text"


def test_import_refuses_what_it_cannot_read(tmp_path):
    (tmp_path / "x.json").write_text('{"not": "an export"}')
    (tmp_path / "bad.prompt.md").write_text("---\nmodel: [\n---\nx")
    (tmp_path / "data.csv").write_text("a,b")
    assert "not a PromStack export" in run("import", "x.json").output
    bad = run("import", "bad.prompt.md")
    assert bad.exit_code == 2 and "not valid YAML" in bad.output
    assert "not a prompt file" in run("import", "data.csv").output


def test_checkpoint_and_status(prompts_dir, isolated_store):
    from store import Store
    from store.filesync import FileSync

    (prompts_dir / "a.txt").write_text("A")
    (prompts_dir / "bad.prompt.md").write_text("---\nx: [\n---\n")
    store = Store(isolated_store)
    FileSync(store, prompts_dir, root=prompts_dir.parent).reconcile()
    store.close()
    made = run("checkpoint", "a", "-m", "reviewed")
    assert made.exit_code == 0 and "Checkpoint a v1: reviewed" in made.output
    status = run("status")
    assert "prompts/a.txt" in status.output and "1 file not versioned" in status.output
    data = json.loads(run("status", "--json").output)
    assert data["files"][0]["prompt"] == "a" and data["errors"][0]["path"] == "prompts/bad.prompt.md"
    assert run("checkpoint", "a", "-m", " ").exit_code == 2


def test_watch_command_versions_saves_until_interrupted(prompts_dir, isolated_store, tmp_path, spawn):
    (prompts_dir / "w.txt").write_text("first")
    env = {**os.environ, "PROMSTACK_DB": str(isolated_store)}
    proc = spawn([sys.executable, "-c", "from promstack.cli import main; main()", "watch", "--debounce", "0.05"],
                 cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with Client(isolated_store) as client:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                names = [p.name for p in client.list_prompts()]
                if names == ["w"]:
                    break
                time.sleep(0.02)
            assert names == ["w"]
            (prompts_dir / "w.txt").write_text("second")
            while time.monotonic() < deadline and client.get_prompt("w").version < 2:
                time.sleep(0.02)
            assert client.get_prompt("w").template == "second"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "new      w v1" in out and "saved    w v2" in out
