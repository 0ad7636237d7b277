"""The watcher (a real watchdog observer), a CLI loop (`promstack prompt update` processes and an
SDK process) and a real `promstack mcp` stdio server driven by an MCP client all write the same
prompt at once. Afterwards: every save that returned is in the store exactly once, holding what
its writer wrote; numbers are gap-free; no "database is locked" (or any traceback) reached a
writer; the audit chain verifies.

Two SDK processes racing without the watcher or MCP: tests/test_concurrency.py.

The issue asks for 1,000 saves per writer. The SDK process and the MCP client make 1,000 each;
the watcher's saves each wait for the file to be versioned (debounce, read, save), and the CLI
pays a process start per save, so those two run for the same window (WINDOW_S) and the test
prints how many they made (bench/RESULTS.md records the counts)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from mcp import Client as MCPClient
from mcp.client.stdio import StdioServerParameters

from promstack import Client
from store.watch import Watcher

from .helpers import integrity_ok, version_invariants, within

SAVES = int(os.environ.get("PROMSTACK_TORTURE_SAVES", "1000"))
WINDOW_S = float(os.environ.get("PROMSTACK_TORTURE_WINDOW", "30"))
PROMSTACK = str(Path(sys.executable).with_name("promstack"))
NAME = "shared"

SDK_WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from promstack import Client

    count, go = int(sys.argv[1]), sys.argv[2]
    client = Client()
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(count):
        saved = client.save("shared", f"sdk {i}\\n{{{{ question }}}}", message=f"sdk-{i}")
        print(json.dumps([i, saved.version, saved.created]), flush=True)
    """
)


def _templates(db: Path) -> dict[str, list[int]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        found: dict[str, list[int]] = {}
        for template, number in conn.execute(
                "SELECT v.template, v.number FROM versions v JOIN prompts p ON p.id = v.prompt_id "
                "WHERE p.name = ?", [NAME]):
            found.setdefault(template, []).append(number)
        return found
    finally:
        conn.close()


def _has_template(db: Path, template: str) -> bool:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute("SELECT 1 FROM versions WHERE template = ? LIMIT 1", [template]).fetchone() is not None
    finally:
        conn.close()


def _watcher_loop(db: Path, path: Path, deadline: float, wrote: list[str], problems: list[str]) -> None:
    i = 0
    while time.monotonic() < deadline and i < SAVES:
        text = f"watcher {i}\n{{{{ question }}}}"
        path.write_text(text, encoding="utf-8")
        wait_until = time.monotonic() + 20
        while not _has_template(db, text):
            if time.monotonic() > wait_until:
                conn = sqlite3.connect(db, timeout=30)
                errors = conn.execute("SELECT path, error FROM watch_errors ORDER BY rowid DESC LIMIT 3").fetchall()
                files = conn.execute("SELECT * FROM prompt_files").fetchall()
                conn.close()
                problems.append(f"the watcher never versioned save {i}: the file holds "
                                f"{path.read_text(encoding='utf-8')[:40]!r}; watch errors {errors}; {files}")
                return
            time.sleep(0.005)
        wrote.append(text)
        i += 1


def _cli_loop(env: dict[str, str], cwd: Path, deadline: float, saved: list[tuple[str, int]],
              problems: list[str]) -> None:
    i = 0
    while time.monotonic() < deadline and i < SAVES:
        text = f"cli {i}\n{{{{ question }}}}"
        proc = subprocess.run([PROMSTACK, "prompt", "update", NAME, "-t", text, "-m", f"cli-{i}", "--json"],
                              capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False)
        if proc.returncode != 0 or "Traceback" in proc.stderr or "locked" in proc.stderr.lower():
            problems.append(f"cli save {i}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
            return
        saved.append((text, json.loads(proc.stdout)["version"]))
        i += 1


async def _mcp_loop(env: dict[str, str], cwd: Path, saved: list[tuple[str, int]], problems: list[str]) -> None:
    params = StdioServerParameters(command=PROMSTACK, args=["mcp"], env=env, cwd=str(cwd))
    async with MCPClient(params, mode="legacy") as mcp:
        for i in range(SAVES):
            text = f"mcp {i}\n{{{{ question }}}}"
            result = await mcp.call_tool("update_prompt", {"prompt": NAME, "template": text, "message": f"mcp-{i}"})
            if result.is_error:
                problems.append(f"mcp save {i}: {result.content[0].text}")
                return
            saved.append((text, result.structured_content["version"]))


def test_watcher_cli_sdk_and_mcp_write_one_prompt_at_once(isolated_store, tmp_path, spawn):
    prompts_dir = tmp_path / "prompts"
    prompts_dir.mkdir()
    shared = prompts_dir / f"{NAME}.txt"
    shared.write_text("start {{ question }}", encoding="utf-8")
    env = {**os.environ, "PROMSTACK_DB": str(isolated_store), "PYTHONUNBUFFERED": "1"}
    problems: list[str] = []
    watcher_wrote: list[str] = []
    cli_saved: list[tuple[str, int]] = []
    mcp_saved: list[tuple[str, int]] = []

    watcher = Watcher(isolated_store, prompts_dir, debounce=0.05)
    watcher.start()
    try:
        assert _has_template(isolated_store, "start {{ question }}")  # reconciled on start
        go = tmp_path / "go"
        sdk = spawn([sys.executable, "-c", SDK_WRITER, str(SAVES), str(go)], cwd=tmp_path,
                    env={**env, "PROMSTACK_USER": "sdk"}, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + WINDOW_S
        threads = [
            threading.Thread(target=_watcher_loop, args=(isolated_store, shared, deadline, watcher_wrote, problems)),
            threading.Thread(target=_cli_loop, args=({**env, "PROMSTACK_USER": "cli"}, tmp_path, deadline,
                                                      cli_saved, problems)),
            threading.Thread(target=lambda: asyncio.run(_mcp_loop({**env, "PROMSTACK_USER": "mcp"}, tmp_path,
                                                                  mcp_saved, problems))),
        ]
        go.touch()
        for t in threads:
            t.start()
        sdk_out, sdk_err = within(240, sdk.communicate, "the SDK writer")
        for t in threads:
            t.join(240)
            assert not t.is_alive(), f"{t.name} did not finish"
        settle = time.monotonic() + 30
        while not watcher.idle():
            assert time.monotonic() < settle, "the watcher did not settle within 30 s"
            time.sleep(0.05)
    finally:
        watcher.stop()

    assert not problems, problems
    assert sdk.returncode == 0, sdk_err
    assert "locked" not in sdk_err.lower() and "Traceback" not in sdk_err, sdk_err
    sdk_saved = [(f"sdk {i}\n{{{{ question }}}}", v) for i, v, created in map(json.loads, sdk_out.splitlines())
                 if created]
    assert len(sdk_saved) == SAVES and len(mcp_saved) == SAVES
    print(f"saves: sdk {len(sdk_saved)}, mcp {len(mcp_saved)}, watcher {len(watcher_wrote)}, "
          f"cli {len(cli_saved)} in a {WINDOW_S:g} s window")
    assert watcher_wrote and cli_saved

    integrity_ok(isolated_store)
    counts = version_invariants(isolated_store)
    stored = _templates(isolated_store)
    # every save is there exactly once, at the number its writer was told
    returned = sdk_saved + mcp_saved + cli_saved
    assert len({v for _, v in returned}) == len(returned)  # no two writers got one number
    for text, version in returned:
        assert stored.get(text) == [version], (text, version, stored.get(text))
    for text in watcher_wrote:
        assert len(stored.get(text, [])) == 1, (text, stored.get(text))
    expected = 1 + len(returned) + len(watcher_wrote)  # + the reconciled first version
    with Client(isolated_store) as client:
        prompt_id = client.get_prompt(NAME).prompt_id
        assert counts[prompt_id] == expected
        ok, detail = client.verify_audit()[:2]
        assert ok, detail
