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


def _versions_of(db, name):
    from store import Store

    store = Store(db)
    try:
        history = store.prompts.history(name)
        prompt_id = store.prompts.prompt_id(name)
        description = store.db.execute("SELECT description FROM prompts WHERE id = ?", [prompt_id]).fetchone()[0]
        checkpoints = [tuple(r) for r in store.db.execute(
            "SELECT version, name FROM checkpoints WHERE prompt_id = ? ORDER BY id", [prompt_id])]
    finally:
        store.close()
    versions = [(v.version, v.branch, v.template, v.model_config, v.variables, v.sha256, v.message, v.source)
                for v in history]
    return versions, description, checkpoints


def test_import_makes_the_same_versions_as_the_watcher(tmp_path, monkeypatch):
    """`promstack import` and the watcher share one path from a file to a version (store.filesync):
    the same file gives the same template, config, message, description and checkpoints."""
    from store import Store
    from store.filesync import FileSync

    saves = [
        {"support/refund.prompt.md": "---\ndescription: Refunds\nmodel: gpt-4o\ntemperature: 0.2\n"
                                     "message: first draft\n---\nRefund {{ item }}\n",
         "sum.prompt.yml": "model: gpt-4o-mini\nmessages:\n  - role: user\n    content: '{{input}}'\n",
         "plain.txt": "Hello {{ name }}\n"},
        # the second save leaves out keys: the file sets what it carries, the rest are kept
        {"support/refund.prompt.md": "---\ndescription: Refunds, politely\ntemperature: 0.5\n"
                                     "message: tone approved\n---\nPlease refund {{ item }}\n",
         "sum.prompt.yml": "messages:\n  - role: system\n    content: Be brief.\n  - role: user\n    content: '{{input}}'\n",
         "plain.txt": "Hello {{ name }}!\n"},
    ]
    watched, imported = tmp_path / "watched", tmp_path / "imported"
    dbs = {}
    for root in (watched, imported):
        (root / ".promstack").mkdir(parents=True)
        (root / "prompts" / "support").mkdir(parents=True)
        dbs[root] = root / ".promstack" / "promstack.db"
    monkeypatch.chdir(tmp_path)
    for files in saves:
        for root in (watched, imported):
            for rel, text in files.items():
                (root / "prompts" / rel).write_text(text, encoding="utf-8")
        store = Store(dbs[watched])
        try:
            results = FileSync(store, watched / "prompts", root=watched).reconcile()
        finally:
            store.close()
        assert all(r.action != "error" for r in results), results
        result = run("--db", str(dbs[imported]), "import", *(str(imported / "prompts" / rel) for rel in files))
        assert result.exit_code == 0, result.output
    for name in ("support/refund", "sum", "plain"):
        assert _versions_of(dbs[imported], name) == _versions_of(dbs[watched], name)
    versions, description, checkpoints = _versions_of(dbs[imported], "support/refund")
    assert [v[0] for v in versions] == [2, 1] and versions[0][3] == {"model": "gpt-4o", "temperature": 0.5}
    assert description == "Refunds, politely"
    assert checkpoints == [(1, "first draft"), (2, "tone approved")]
