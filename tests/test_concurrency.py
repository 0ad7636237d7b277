"""Concurrent writers in separate processes lose nothing; a killed writer corrupts nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from promstack import Client

SAVES = 500

WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from promstack import Client

    tag, count, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = Client()
    open(f"{go}.{tag}.ready", "w").close()  # imported and open: only the start signal is left
    while not os.path.exists(go):
        time.sleep(0.001)
    i = 0
    while count < 0 or i < count:
        saved = client.save("p", f"writer {tag} save {i}\\n{{{{ question }}}}", message=f"{tag}-{i}")
        print(json.dumps([i, saved.version, saved.created]), flush=True)
        i += 1
    """
)


def _writer(spawn, tag: str, count: int, go, db) -> subprocess.Popen:
    env = {**os.environ, "PROMSTACK_DB": str(db), "PROMSTACK_USER": f"writer-{tag}"}
    return spawn(
        [sys.executable, "-c", WRITER, tag, str(count), str(go)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _start_together(go, children: dict[str, subprocess.Popen]) -> None:
    """Touch `go` once every child has written its ready file, `<go>.<tag>.ready`, and waits."""
    deadline = time.monotonic() + 120
    while not all(os.path.exists(f"{go}.{tag}.ready") for tag in children):
        assert time.monotonic() < deadline, "the children did not start"
        for proc in children.values():
            assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.01)
    go.touch()


def _check_store(db, expected_versions: int | None = None) -> int:
    """The store is intact and its numbers gap-free; returns how many versions it holds."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        numbers = [n for (n,) in conn.execute("SELECT number FROM versions ORDER BY number")]
        assert numbers == list(range(1, len(numbers) + 1))
        if expected_versions is not None:
            assert len(numbers) == expected_versions
        # every version's parent is the one before it: no save read a stale head
        parents = conn.execute("SELECT number, parent FROM versions ORDER BY number").fetchall()
        assert all(parent == number - 1 for number, parent in parents[1:])
        (head,) = conn.execute("SELECT head FROM branches WHERE name = 'main'").fetchone()
        assert head == len(numbers)
        assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == len(numbers)
        return len(numbers)
    finally:
        conn.close()


def test_two_processes_saving_500_times_each_lose_nothing(client, isolated_store, tmp_path, spawn):
    client.create_prompt("p", "start {{ question }}")
    go = tmp_path / "go"
    writers = {tag: _writer(spawn, tag, SAVES, go, isolated_store) for tag in ("a", "b")}
    # a slow start under load must not let one writer finish before the other begins
    _start_together(go, writers)
    outputs = {tag: proc.communicate(timeout=300) for tag, proc in writers.items()}
    for tag, (_, err) in outputs.items():
        assert writers[tag].returncode == 0, err
        assert "locked" not in err.lower() and "Traceback" not in err, err
    _check_store(isolated_store, expected_versions=2 * SAVES + 1)

    seen = set()
    for tag, (out, _) in outputs.items():
        results = [json.loads(line) for line in out.splitlines()]
        assert [i for i, _, _ in results] == list(range(SAVES))
        assert all(created for _, _, created in results)
        for i, version, _ in results:
            # the version each save returned holds exactly what that save wrote, by its writer
            stored = client.get_prompt("p", version=version)
            assert stored.template == f"writer {tag} save {i}\n{{{{ question }}}}"
            assert (stored.author, stored.message) == (f"writer-{tag}", f"{tag}-{i}")
            seen.add(version)
    assert seen == set(range(2, 2 * SAVES + 2))
    # the writers really raced: their versions interleave rather than one running after the other
    a_versions = sorted(json.loads(line)[1] for line in outputs["a"][0].splitlines())
    switches = sum(1 for n in a_versions[1:] if n - 1 not in a_versions)
    print(f"writer a's 500 versions form {switches + 1} runs")
    assert switches > 0
    assert client.verify_audit()[0]


def test_kill_9_mid_save_loop_leaves_the_store_intact(client, isolated_store, tmp_path, spawn):
    client.create_prompt("p", "start {{ question }}")
    go = tmp_path / "go"
    go.touch()
    victim = _writer(spawn, "k", -1, go, isolated_store)
    deadline = time.monotonic() + 60
    reached = 0
    while reached < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
        conn = sqlite3.connect(isolated_store, timeout=10)
        reached = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
        conn.close()
    assert reached >= 200, victim.stderr.read() if victim.poll() is not None else "writer too slow"
    victim.send_signal(signal.SIGKILL)
    out, _ = victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    count = _check_store(isolated_store)
    reported = [json.loads(line) for line in out.splitlines() if line.endswith("]")]
    assert reported, "the writer reported no save before it was killed"
    # every save that returned before the kill is in the store
    last_returned = max(version for _, version, _ in reported)
    assert last_returned <= count <= last_returned + 1
    # and the store keeps working after the crash
    with Client(isolated_store) as after:
        assert after.save("p", "after the crash").version == count + 1
        assert after.verify_audit()[0]


OPENER = textwrap.dedent(
    """
    import os, sys, time
    from promstack import Client

    go = sys.argv[2]
    open(f"{go}.{sys.argv[1]}.ready", "w").close()  # imported: only the start signal is left
    while not os.path.exists(go):
        time.sleep(0.0005)
    with Client() as client:
        client.create_prompt(sys.argv[1], "hello")
    """
)


def test_processes_opening_a_new_store_at_once_both_migrate_safely(tmp_path, spawn):
    for attempt in range(3):
        db = tmp_path / f"fresh{attempt}" / "promstack.db"
        db.parent.mkdir()  # PROMSTACK_DB into a missing folder is refused as a typo
        go = tmp_path / f"go{attempt}"
        env = {**os.environ, "PROMSTACK_DB": str(db)}
        procs = {
            name: spawn([sys.executable, "-c", OPENER, name, str(go)], env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in ("p0", "p1", "p2")
        }
        _start_together(go, procs)
        for proc in procs.values():
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        with Client(db) as client:
            assert sorted(p.name for p in client.list_prompts()) == ["p0", "p1", "p2"]


def test_a_template_only_save_keeps_a_config_saved_meanwhile(isolated_store, monkeypatch):
    """Save A gives only a template, so it takes the model config from the head. If save B
    changes the config between A reading the head and A taking the write lock, A must build on
    B's version, not silently revert B's config."""
    import store.prompts

    with Client(isolated_store) as a, Client(isolated_store) as b:
        a.create_prompt("p", "one", model_config={"model": "old"})
        real_write, fired = store.prompts.write, []

        def b_saves_first(db):
            if not fired:
                fired.append(True)
                b.save("p", model_config={"model": "new"})
            return real_write(db)

        monkeypatch.setattr(store.prompts, "write", b_saves_first)
        saved = a.save("p", "two")
        assert fired
        assert (saved.version, saved.parent) == (3, 2)
        assert saved.model_config == {"model": "new"}
        assert a.get_prompt("p").model_config == {"model": "new"}
