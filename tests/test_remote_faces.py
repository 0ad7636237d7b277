"""The faces on a laptop whose store is a team server's (PROMSTACK_URL): the MCP server's tools
read and write the server's prompts, and the file watcher saves prompt files to the server."""

from __future__ import annotations

import json
import re
import time

import pytest
from team_server import serve

from promstack import Client

TOKEN = "laptop-token-of-sixteen-or-more"
pytest_plugins = ("test_evals_fake",)


@pytest.fixture
def team(spawn, tmp_path):
    from store.workspace import init

    root = tmp_path / "team"
    db = init(root)
    with Client(db) as client:
        client.create_prompt("support/refund", "Refunds: {{ question }}")
    url = serve(spawn, root, token=TOKEN)
    return url


@pytest.fixture
def laptop(team, monkeypatch, tmp_path):
    """No store of its own: PROMSTACK_URL and PROMSTACK_TOKEN name the team's."""
    monkeypatch.delenv("PROMSTACK_DB", raising=False)
    monkeypatch.setenv("PROMSTACK_URL", team)
    monkeypatch.setenv("PROMSTACK_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return team


@pytest.mark.anyio
async def test_mcp_tools_work_on_the_servers_store(laptop):
    from mcp import Client as MCPClient
    from mcp_types import Implementation

    from mcp_server.server import build_server

    server = build_server()
    async with MCPClient(server, client_info=Implementation(name="pytest-client", version="1")) as mcp:
        listed = (await mcp.call_tool("list_prompts", {})).structured_content
        assert [p["name"] for p in listed["prompts"]] == ["support/refund"]
        saved = await mcp.call_tool("update_prompt", {"prompt": "support/refund",
                                                      "template": "Refunds, kindly: {{ question }}"})
        assert saved.is_error is False, saved.content
        missing = await mcp.call_tool("get_prompt", {"prompt": "nothing/here"})
        assert missing.is_error and "nothing/here" in missing.content[0].text
        names = [p.name for p in (await mcp.list_prompts()).prompts]
        assert "support/refund" in names
        # the monitoring tools read the server's call log (client.monitoring over REST)
        metrics = await mcp.call_tool("get_metrics", {"since": "30d"})
        assert metrics.is_error is False and metrics.structured_content["groups"] is not None, metrics.content
        alerts = await mcp.call_tool("check_alerts", {"notify": False})
        assert alerts.is_error is False, alerts.content
        costs = await mcp.call_tool("cost_report", {"since": "30d"})
        assert costs.is_error is False and "total_usd" in json.dumps(costs.structured_content), costs.content
    server.engine.close()
    with Client(url=laptop, token=TOKEN) as client:
        assert client.get_prompt("support/refund").template == "Refunds, kindly: {{ question }}"


def test_file_saves_become_versions_on_the_server(laptop, tmp_path):
    from promstack.remote import FileSaver

    folder = tmp_path / "prompts" / "support"
    folder.mkdir(parents=True)
    (folder / "refund.txt").write_text("Refunds from a file: {{ question }}\n", encoding="utf-8")
    client = Client()
    saver = FileSaver(client, tmp_path / "prompts", interval=0.05)
    made = saver.start()
    try:
        assert [(v.name, v.version) for v in made] == [("support/refund", 2)]
        time.sleep(0.05)
        (folder / "refund.txt").write_text("Refunds, edited: {{ question }}\n", encoding="utf-8")
        deadline = time.monotonic() + 10
        while client.get_prompt("support/refund").version < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        saver.stop()
    assert client.get_prompt("support/refund").template == "Refunds, edited: {{ question }}\n"
    client.close()


# ---- the CLI over a server prints what it prints locally --------------------------------------

TIME = re.compile(r"\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:\d\d)?|\br\d{8}-\d{6}-[0-9a-f]{6}\b")


@pytest.fixture
def twins(spawn, tmp_path, monkeypatch, _scripted_server):
    """Two copies of one workspace: one served by `promstack serve`, one a local store; the same
    command against each must print the same (times and new run ids aside). Models `openai/*`
    are the fake LLM (test_evals_fake); one test run of suite `regression` is in both."""
    import shutil

    from store.workspace import init

    root = tmp_path / "team"
    db = init(root)
    with Client(db) as client:
        client.create_prompt("support/answer", "v1 {{ input }}", id=42)
        client.save(42, "v2 {{ input }}")
        client.save(42, "v3 {{ input }}")
        client.set_label(42, "production", 1, force=True, reason="the first release")
        client.set_label(42, "staging", 1, force=True, reason="the first release")
        client.set_label(42, "beta", 1)
        client.set_label(42, "beta", 2)
        for n in range(4, 8):
            client.save(42, f"v{n} {{{{ input }}}}")
        from store.checkpoints import checkpoint

        checkpoint(client.store, 42, "tone approved by legal", version=5)
        from store import calls

        calls.insert(client.store.db, [({
            "timestamp": f"2026-03-0{day}T10:00:00Z", "prompt_id": 42, "prompt_version": 1, "model": "openai/good",
            "input_tokens": 10 * day, "output_tokens": day, "latency_ms": 100.0 * day, "user_id": f"user_{day}",
            "cost_usd": 0.001 * day, "status": "error" if day == 3 else "ok", "error": "rate limited" if day == 3 else None,
            "environment": "production", "call_id": f"call-{day}", "prompt_name": "support/answer"}, None)
            for day in (1, 2, 3)])
        suite = client.evals.save_suite("regression", [{"input": "hi", "expected_output": "hello"}], fmt="csv",
                                        source="test", sha256="0" * 64, prompt_id=42)
        for models in (["openai/good"], ["openai/good", "openai/cheap"]):
            run = client.evals.create_run(kind="test", suite=suite, prompt_id=42, prompt_version=1, models=models,
                                          repeat=1, config={}, judge_key="", total=len(models))
            client.evals.set_run_status(run["id"], "done", {"pass_rate": 0.5, "score": 71.0})
    from test_evals_fake import SEED_CSV, write_config

    _scripted_server.reset()
    write_config(root, _scripted_server.base_url)
    config = root / ".promstack" / "config.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      + "\n[environments.production]\napproval = true\nallow_self_approval = true\n", encoding="utf-8")
    with Client(db) as client:
        from promstack.evals import engine

        engine.import_suite(client, text=SEED_CSV, fmt="csv", name="graded", prompt=42)
        engine.run_tests(client, "graded", prompt=42, models=["openai/good"])
    shutil.copytree(root, tmp_path / "here")
    url = serve(spawn, root, token=TOKEN)
    monkeypatch.chdir(tmp_path)
    from click.testing import CliRunner

    from promstack.cli import cli

    runner = CliRunner()
    remote = {"PROMSTACK_URL": url, "PROMSTACK_TOKEN": TOKEN, "PROMSTACK_DB": None}
    # The server inherits this process's PROMSTACK_USER: both write under one name.
    local = {"PROMSTACK_URL": None, "PROMSTACK_DB": str(tmp_path / "here" / ".promstack" / "promstack.db")}

    def both(*args: str, code: int = 0) -> str:
        there = runner.invoke(cli, list(args), env=remote)
        here = runner.invoke(cli, list(args), env=local)
        assert (there.exit_code, here.exit_code) == (code, code), (args, there.output, here.output, there.exception)
        there_out, here_out = TIME.sub("<time>", there.output), TIME.sub("<time>", here.output)
        if "--json" in args and code == 0:  # the same document; the order of an object's keys aside
            assert json.loads(there_out) == json.loads(here_out), args
        else:
            assert there_out == here_out, args
        return there.output

    both.remote, both.local = remote, local  # a test that runs one side alone
    return both


WINDOW = ("--since", "2026-01-01T00:00:00Z", "--until", "2030-01-01T00:00:00Z")


def test_monitoring_over_a_server(twins):
    assert "requests" in twins("metrics", *WINDOW)
    twins("metrics", *WINDOW, "--by", "prompt,model", "--prompt", "42")
    twins("metrics", *WINDOW, "--json")
    twins("metrics", *WINDOW, "--by", "colour", code=2)
    twins("alerts", "check", "--no-notify")
    twins("alerts", "list")
    twins("alerts", "list", "--state", "firing", "--json")
    twins("cost", *WINDOW)
    twins("cost", *WINDOW, "--by", "model", "--json")


def test_approvals_ab_tests_and_rollouts_over_a_server(twins):
    pending = twins("deploy", "--prompt", "42", "--version", "2", "--force", "--reason", "hotfix")
    first = re.search(r"deployment (\d+)", pending).group(1)
    twins("deploy", "list")
    assert twins("deploy", "approve", first, "--reason", "looks right")
    twins("deploy", "approve", first, code=2)
    again = twins("deploy", "--prompt", "42", "--version", "3", "--force", "--reason", "again")
    twins("deploy", "reject", re.search(r"deployment (\d+)", again).group(1), "--reason", "not now")
    twins("ab", "start", "--prompt", "42", "--a", "1", "--b", "2", "--env", "staging", "--force", "--reason", "try")
    twins("ab", "report", "--prompt", "42", "--env", "staging")
    twins("ab", "stop", "--prompt", "42", "--env", "staging", "--winner", "b")
    slowly = twins("deploy", "--prompt", "42", "--version", "3", "--rollout", "10", "--force", "--reason", "slowly")
    twins("deploy", "approve", re.search(r"deployment (\d+)", slowly).group(1))
    twins("rollout", "status", "--prompt", "42")
    twins("rollout", "promote", "--prompt", "42")
    twins("rollout", "check")
    twins("rollout", "abort", "--prompt", "42", "--reason", "enough")


def test_labels_and_the_call_log_over_a_server(twins):
    twins("label", "at", "42", "beta", "2999-01-01T00:00:00Z")
    twins("label", "at", "42", "beta", "2000-01-01T00:00:00Z")
    twins("label", "at", "42", "beta", "2999-01-01T00:00:00Z", "--json")
    twins("label", "at", "42", "nothing", "yesterday", code=2)
    assert "beta -> v1 (was v2)" in twins("label", "rollback", "42", "beta", "--reason", "too soon")
    twins("label", "rollback", "42", "beta")
    twins("label", "rollback", "42", "nothing", code=2)
    twins("label", "history", "42", "beta")
    assert "rate limited" in twins("logs", *WINDOW)
    twins("logs", "--prompt", "support/answer", "--status", "ok", "--json")
    twins("logs", "--user", "user_2", "--limit", "1")
    twins("logs", "--prompt", "nothing/here", code=2)


def test_folded_history_over_a_server(twins):
    assert "tone approved by legal" in twins("history", "42", "--checkpoints")
    assert "unnamed save" in twins("history", "42", "--checkpoints")
    twins("history", "42", "--checkpoints", "--json")
    twins("history", "nothing/here", "--checkpoints", code=2)


def test_a_prompt_of_a_chosen_id_over_a_server(twins):
    assert "500" in twins("prompt", "create", "billing/other", "--template", "Hi {{ x }}", "--id", "500")
    twins("prompt", "create", "billing/again", "--template", "Hi {{ x }}", "--id", "500", code=2)
    twins("prompt", "show", "500")


def test_runs_over_a_server(twins):
    assert "pass 50% score 71" in twins("runs")
    twins("runs", "--suite", "regression", "--limit", "1")
    twins("runs", "--suite", "nothing", "--json")
    twins("runs", "--json")


def test_judge_arena_and_votes_over_a_server(twins, tmp_path):
    import json as _json

    from test_evals_fake import SEED_JUDGE

    (tmp_path / "judge.json").write_text(_json.dumps(SEED_JUDGE, ensure_ascii=False), encoding="utf-8")
    with Client(tmp_path / "here" / ".promstack" / "promstack.db") as here:
        tested = [r["id"] for r in here.list_runs(suite="graded")][0]
    assert "pass" in twins("judge", tested, "--criteria", "judge.json", "--judge-model", "openai/judge").lower()
    twins("judge", "r20000101-000000-000000", "--criteria", "judge.json", code=2)
    arena = ("arena", "--suite", "graded", "--prompt", "42", "--models", "openai/q1,openai/q3",
             "--judge-model", "openai/judge", "--seed", "3", "--concurrency", "1")
    assert "win rate" in twins(*arena)
    twins("arena", "--suite", "graded", "--models", "openai/q1", code=2)
    with Client(tmp_path / "here" / ".promstack" / "promstack.db") as here:
        arena_run = [r for r in here.list_runs(suite="graded") if r["kind"] == "arena"][0]
        match = here.evals.matches(arena_run["id"])[0]
    twins("vote", str(match["id"]), "openai/q3", "--voter", "dana")
    twins("vote", str(match["id"]), "openai/q9", code=2)
    twins("runs", "--suite", "graded")


def test_cost_advice_over_a_server(twins):
    twins("cost", "recommend", "--prompt", "42")
    twins("cost", "recommend", "--prompt", "42", "--tolerance", "5", "--json")
    twins("cost", "compare", "--prompt", "42", "1", "3", code=2)
    twins("cost", "compare", "--prompt", "42", "1", "3", "--model", "openai/good", "--json")
    twins("cost", "compare", "--prompt", "42", "1", "99", code=2)
    twins("cost", "tokens", "--prompt", "42")
    twins("cost", "tokens", "--prompt", "42", "--model", "openai/good", "--json")
    assert "shipped prices" in twins("cost", "prices")
    twins("cost", "prices", "--model", "openai/good", "--model", "nobody/prices-this")
    assert "verdict: rejected" in twins("cost", "shorter", "--prompt", "42", "--model", "openai/bad", code=1)
    twins("cost", "shorter", "--prompt", "42", "--model", "openai/bad", "--no-test", "--json", code=1)


def test_export_import_and_the_audit_log_over_a_server(twins, tmp_path):
    exported = json.loads(twins("export"))
    assert [p["name"] for p in exported["prompts"]][:1] == ["support/answer"]
    twins("export", "--json")
    assert "support/answer" in twins("audit")
    twins("audit", "--prompt", "42", "--limit", "5")
    twins("audit", "--json")
    twins("audit", "--prompt", "nothing/here", code=2)
    assert "audit head" in twins("audit", "verify")
    twins("audit", "verify", "--expect", "not-a-head", code=2)
    # a document of another store: one prompt, its production label (a gated environment)
    with Client(tmp_path / "elsewhere.db") as other:
        other.create_prompt("billing/invoice", "Invoice {{ n }}")
        other.set_label("billing/invoice", "production", 1, force=True, reason="elsewhere")
        (tmp_path / "backup.json").write_text(json.dumps(other.export()), encoding="utf-8")
    assert "production" in twins("import", "backup.json", code=2)
    assert "1 prompts, 1 versions" in twins("import", "backup.json", "--force", "--reason", "restore")
    twins("label", "history", "billing/invoice")
    assert "deploy_forced" in twins("audit", "--prompt", "billing/invoice")  # hashes cover the times: text only


def test_status_compares_the_files_here_with_the_servers_heads(twins, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from promstack.cli import cli

    prompts = tmp_path / "prompts" / "support"
    prompts.mkdir(parents=True)
    (prompts / "answer.txt").write_text("v7 {{ input }}", encoding="utf-8")
    (tmp_path / "prompts" / "fresh.txt").write_text("Brand new {{ x }}", encoding="utf-8")
    (tmp_path / "prompts" / "broken.prompt.md").write_bytes(b"---\nmodel: [unclosed\n---\nhi")
    env = twins.remote
    out = CliRunner().invoke(cli, ["status", "--json"], env=env)
    assert out.exit_code == 0, out.output
    found = json.loads(out.output)
    assert [(f["path"], f["prompt"], f["version"], f["state"]) for f in found["files"]] == [
        ("prompts/fresh.txt", "fresh", None, "new"), ("prompts/support/answer.txt", "support/answer", 7, "same")]
    assert [e["path"] for e in found["errors"]] == ["prompts/broken.prompt.md"]
    (prompts / "answer.txt").write_text("v8 {{ input }}", encoding="utf-8")
    text = CliRunner().invoke(cli, ["status"], env=env).output
    assert "support/answer v7 (differs from the server's v7; 'promstack import' saves it)" in text
    assert "fresh (not on the server" in text and "1 file not readable" in text


def test_ab_report_with_evaluate_over_a_server(twins, tmp_path):
    for root in (tmp_path / "team", tmp_path / "here"):  # arm B names a model, so evaluate can run it
        with Client(root / ".promstack" / "promstack.db") as client:
            client.save(42, "v8 {{ input }}", model_config={"model": "openai/good"})
    twins("ab", "start", "--prompt", "42", "--a", "1", "--b", "8", "--env", "staging", "--force", "--reason", "try")
    before = twins("ab", "report", "--prompt", "42", "--env", "staging")
    assert "v8 has no finished run" in before
    after = twins("ab", "report", "--prompt", "42", "--env", "staging", "--evaluate")
    assert "v8 has no finished run" not in after
    twins("runs", "--suite", "graded")


def _interrupt_arena(db, run_id: str) -> None:
    """The newest arena run of `db` as a killed one would leave it, under the id `run_id` (the
    same in both stores, so one command resumes it in each): half its matches undone."""
    import sqlite3

    conn = sqlite3.connect(db)  # foreign keys off: the run's id changes with its rows'
    with conn:
        (old,) = conn.execute("SELECT id FROM runs WHERE kind = 'arena' ORDER BY started_at DESC LIMIT 1").fetchone()
        for table in ("results", "arena_matches", "votes", "calls"):
            conn.execute(f"UPDATE {table} SET run_id = ? WHERE run_id = ?", [run_id, old])
        conn.execute("UPDATE runs SET id = ?, status = 'interrupted', summary = NULL, finished_at = NULL "
                     "WHERE id = ?", [run_id, old])
        done = [r[0] for r in conn.execute("SELECT id FROM arena_matches WHERE run_id = ? ORDER BY id", [run_id])]
        conn.executemany("DELETE FROM arena_matches WHERE id = ?", [[i] for i in done[len(done) // 2:]])
    conn.close()


def test_arena_resume_over_a_server(twins, tmp_path):
    twins("arena", "--suite", "graded", "--prompt", "42", "--models", "openai/q1,openai/q3",
          "--judge-model", "openai/judge", "--seed", "3", "--concurrency", "1")
    killed = "r20260301-100000-abcdef"
    for root in (tmp_path / "team", tmp_path / "here"):
        _interrupt_arena(root / ".promstack" / "promstack.db", killed)
    assert "interrupted" in twins("runs", "--suite", "graded")
    assert "win rate" in twins("arena", "--resume", killed, "--concurrency", "1")
    twins("runs", "--suite", "graded")
    twins("arena", "--resume", "r20000101-000000-000000", code=2)


def test_run_with_a_run_id_an_environment_and_no_cache_over_a_server(twins, tmp_path):
    """`promstack run --run-id --env --no-cache` over a server logs the call as a local run does:
    under that run id and environment, and `--no-cache` calls the model though the cache holds the reply."""
    from click.testing import CliRunner

    from promstack.cli import cli

    runner = CliRunner()
    args = ["run", "42", "--var", "input=hi", "--model", "openai/good", "--run-id", "ci-build-7", "--env", "ci"]
    logged = {}
    for side, env in (("there", twins.remote), ("here", twins.local)):
        for extra in ([], [], ["--no-cache"]):  # a miss that fills the cache, a hit, a call past it
            done = runner.invoke(cli, args + extra, env=env)
            assert done.exit_code == 0, (side, done.output, done.exception)
        with Client(**({"url": env["PROMSTACK_URL"], "token": TOKEN} if side == "there" else {"db": env["PROMSTACK_DB"]})
                    ) as client:
            rows = client.call_log(run_id="ci-build-7")
        logged[side] = sorted((r["environment"], r["run_id"], bool(r["cache_hit"]), r["prompt_version"], r["model"])
                              for r in rows)
    assert logged["there"] == logged["here"]
    assert logged["here"] == [("ci", "ci-build-7", False, 7, "openai/good")] * 2 + [("ci", "ci-build-7", True, 7, "openai/good")]


def _interrupt_test_run(db, run_id: str) -> str:
    """The newest test run of suite 'graded' in `db` as a killed one would leave it, under the id
    `run_id`: one result kept, the others not run yet. Returns the kept result's finish time."""
    import sqlite3

    conn = sqlite3.connect(db)  # foreign keys off: the run's id changes with its rows'
    with conn:
        (old,) = conn.execute("SELECT id FROM runs WHERE kind = 'test' AND suite_name = 'graded' "
                              "ORDER BY started_at DESC LIMIT 1").fetchone()
        for table in ("results", "calls"):
            conn.execute(f"UPDATE {table} SET run_id = ? WHERE run_id = ?", [run_id, old])
        conn.execute("UPDATE runs SET id = ?, status = 'interrupted', summary = NULL WHERE id = ?", [run_id, old])
        kept = conn.execute("SELECT id, finished_at FROM results WHERE run_id = ? ORDER BY id LIMIT 1",
                            [run_id]).fetchone()
        conn.execute("DELETE FROM results WHERE run_id = ? AND id != ?", [run_id, kept[0]])
    conn.close()
    return kept[1]


def test_test_resume_over_a_server(twins, tmp_path, monkeypatch, _scripted_server):
    """`promstack test --resume RUN` over a server: the run's finished results come from the
    server, the cases left run here, and the completed run is uploaded once, as a local resume
    completes the local run."""
    from click.testing import CliRunner

    from promstack.cli import cli

    # the cases left run here, through this machine's gateway, with its own key (as in CI)
    monkeypatch.setenv("OPENAI_API_BASE", _scripted_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-laptops-own")
    killed = "r20260301-100000-fedcba"
    kept = {side: _interrupt_test_run(tmp_path / side / ".promstack" / "promstack.db", killed)
            for side in ("team", "here")}
    runner = CliRunner()
    seen, runs_seen = {}, {}
    for side, env in (("team", twins.remote), ("here", twins.local)):
        done = runner.invoke(cli, ["test", "--resume", killed, "--json"], env=env)
        assert done.exit_code in (0, 1), (side, done.output, done.exception)
        again = runner.invoke(cli, ["test", "--resume", killed, "--json"], env=env)  # nothing left: the same run
        assert again.exit_code == done.exit_code, (side, again.output, again.exception)
        first, second = json.loads(done.stdout), json.loads(again.stdout)
        assert first["summary"]["results"] == first["summary"]["total"] == 3
        assert (second["summary"]["results"], second["summary"]["pass_rate"]) == (3, first["summary"]["pass_rate"])
        runs_seen[side] = first
        seen[side] = (done.exit_code, first["status"], first["prompt_version"], first["summary"]["pass_rate"],
                      first["summary"]["results"])
    assert seen["team"] == seen["here"], (runs_seen["team"]["summary"], runs_seen["here"]["summary"])
    assert seen["team"][1] == "done"
    with Client(url=twins.remote["PROMSTACK_URL"], token=TOKEN) as server:
        assert [r["id"] for r in server.list_runs(suite="graded", limit=100)].count(killed) == 1
        results = server.run_results(killed)
    assert len(results) == 3
    assert kept["team"] in [r["finished_at"] for r in results]  # the finished case was not run again
    twins("test", "--resume", "r20000101-000000-000000", code=2)


@pytest.mark.anyio
async def test_mcp_over_a_server_announces_changes_made_by_others(laptop):
    """`promstack mcp` with PROMSTACK_URL polls the server's change mark: a save or a label move
    by someone else is announced to its clients as prompts/list_changed; a quiet server is not."""
    import anyio
    import httpx
    from mcp import Client as MCPClient
    from mcp_types import Implementation

    from mcp_server.server import build_server

    seen: list[str] = []

    async def on_message(message) -> None:
        method = getattr(message, "method", None) or getattr(getattr(message, "root", None), "method", None)
        if method:
            seen.append(method)

    def elsewhere(change) -> None:
        with Client(url=laptop, token=TOKEN) as other:
            change(other)

    server = build_server(poll_seconds=3600)  # polled by hand below
    try:
        async with MCPClient(server, mode="legacy", message_handler=on_message,
                             client_info=Implementation(name="pytest-client", version="1")) as mcp:
            await mcp.call_tool("list_prompts", {})
            await server.watch.poll_once()  # the mark as it is now
            assert await server.watch.poll_once() is False  # nothing changed on the server
            seen.clear()
            await anyio.to_thread.run_sync(elsewhere, lambda c: c.save("support/refund", "Refunds now: {{ question }}"))
            assert await server.watch.poll_once() is True
            with anyio.fail_after(5):
                while "notifications/prompts/list_changed" not in seen:
                    await anyio.sleep(0.01)
            assert await server.watch.poll_once() is False
            await anyio.to_thread.run_sync(elsewhere, lambda c: c.set_label("support/refund", "beta", 1))
            assert await server.watch.poll_once() is True
    finally:
        server.engine.close()
    # the mark itself: the same until something changes, and a 304 for an unchanged ETag
    with httpx.Client(base_url=f"{laptop}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        first = api.get("/changes")
        assert first.status_code == 200 and first.json()["changed"] is True
        mark = first.json()["cursor"]
        assert api.get("/changes", params={"since": mark}).json() == {"cursor": mark, "changed": False}
        assert api.get("/changes", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        with Client(url=laptop, token=TOKEN) as other:
            other.create_prompt("support/other", "Other: {{ x }}")
        assert api.get("/changes", params={"since": mark}).json()["changed"] is True


class _StopsAtTheSecondCase:
    """A gateway that answers the first case (and its judge) and is then interrupted, as a
    Ctrl-C would interrupt the run."""

    def __init__(self) -> None:
        self.cases = 0

    async def complete(self, *, prompt, variables=None, **kw):
        import asyncio

        from promstack.evals.gateway import Reply

        if str(prompt).startswith("promstack/"):  # the judge
            n = (variables or {}).get("criteria", "").count("\n") + 1
            return Reply(json.dumps({"scores": [{"criterion": i + 1, "score": 5, "reason": "r"} for i in range(n)]}))
        self.cases += 1
        if self.cases > 1:
            raise asyncio.CancelledError
        return Reply("긍정적 답변", input_tokens=3, output_tokens=2, latency_ms=5.0)

    async def embed(self, texts, *, model=None, run_id=None):
        from promstack.evals.gateway import EmbeddingUnavailable

        raise EmbeddingUnavailable("no embedding model here")


def test_a_run_interrupted_here_is_kept_on_the_server_and_resumes(twins, monkeypatch, _scripted_server):
    """A test run over a server stopped part-way keeps its finished cases on the server (uploaded
    as interrupted); resuming it runs only the rest and completes that run."""
    import asyncio

    monkeypatch.setenv("OPENAI_API_BASE", _scripted_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-laptops-own")
    with Client(url=twins.remote["PROMSTACK_URL"], token=TOKEN) as client:
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(client.tests.arun_tests("graded", prompt=42, models=["openai/good"], concurrency=1,
                                                gateway=_StopsAtTheSecondCase()))
        stopped = client.list_runs(suite="graded", limit=1)[0]
        assert stopped["status"] == "interrupted"
        kept = client.run_results(stopped["id"])
        assert len(kept) == 1
        done = asyncio.run(client.tests.aresume_run(stopped["id"]))
        assert (done["id"], done["status"], done["summary"]["results"]) == (stopped["id"], "done", 3)
        results = client.run_results(stopped["id"])
        assert len(results) == 3 and kept[0] in [{**r, "id": kept[0]["id"]} for r in results]
        assert [r["id"] for r in client.list_runs(suite="graded", limit=100)].count(stopped["id"]) == 1


def test_a_run_with_workers_over_a_server_runs_here_and_is_uploaded(twins, monkeypatch, _scripted_server):
    """`--workers` over a team server: the run is made here, shared by worker processes on this
    machine's scratch store, and uploaded once, whole."""
    import asyncio

    monkeypatch.setenv("OPENAI_API_BASE", _scripted_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-laptops-own")
    with Client(url=twins.remote["PROMSTACK_URL"], token=TOKEN) as client:
        done = asyncio.run(client.tests.arun_tests("graded", prompt=42, models=["openai/good"], concurrency=4,
                                                   workers=2))
        assert (done["status"], done["summary"]["results"]) == ("done", 3)
        results = client.run_results(done["id"])
        assert len(results) == 3 and len({(r["case_key"], r["model"], r["repeat"]) for r in results}) == 3
