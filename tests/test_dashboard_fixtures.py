"""A workspace for the dashboard tests (no tests here), filled through the fake model server, and a server.

`fill_workspace(root, fake)` makes what a person would see after a few days of use, all
through the engine: prompt 42 with versions on main and a branch, labels, the seed's regression
suite run on two versions and two models (judged with the seed's criteria), an arena of three
models, calls from the gateway in two environments with some errors, alert rules that fired,
and budgets. The gateway's calls all happen now; `spread_calls` then moves their timestamps
over the past day (the only write outside the engine) so the charts have a shape.

`serve(app)` runs the app under uvicorn on a free 127.0.0.1 port, on a thread, as
`promstack serve` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED_CSV = ('input,expected_output\n"이 제품의 장점은?","긍정적 답변"\n"환불하고 싶어요","환불 절차 안내"\n'
            '"욕설 포함 입력","정중한 거절"\n')
SEED_JUDGE = {"criteria": ["응답이 질문에 적절한가?", "톤이 일관적인가?", "잘못된 정보가 없는가?"],
              "scoring": "1-5"}
V1 = "당신은 세계 최고의 전문가로서, 사용자의 모든 질문에\n친절하고 전문적으로 답변해야 합니다.\n질문: {{ input }}\n"
V2 = "전문가로서 답변하세요. 예시 포함.\n질문: {{ input }}\n"
V3 = "전문가로서 짧게 답변하세요. 예시 포함.\n질문: {{ input }}\n"
CALLS_PER_HOUR = {0: 3, 1: 5, 2: 2, 4: 6, 6: 4, 9: 3, 12: 5, 15: 2, 18: 4, 21: 3}  # hours ago -> calls
LATENCY_S = {0: 0.02, 1: 0.05, 2: 0.03, 4: 0.2, 6: 0.08, 9: 0.04, 12: 0.35, 15: 0.03, 18: 0.1, 21: 0.05}
LATENCY_THRESHOLD_MS = 300


def write_config(root: Path, base_url: str) -> None:
    folder = root / ".promstack"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(
        f'[providers.openai]\napi_base = "{base_url}"\n\n'
        "[gateway]\nretry_initial = 0.01\nretry_max_wait = 0.05\nmax_retries = 0\n\n"
        "[alerts]\nwindow = \"24h\"\nlatency_p95_ms = 300\n\n"
        "[limits]\ndaily_tokens = 20000\n\n"
        "[budgets]\nmonthly_usd = 0.05\ndaily_usd = 0.02\n\n"
        # The pages' runs must find the cache cold and the budgets as the fixture spent them: the
        # quick check of each save (tests/test_check*.py) would warm one and spend the other.
        "[check]\nenabled = false\n",
        encoding="utf-8",
    )


def fill_workspace(root: Path, fake: Any) -> dict[str, Any]:
    from promstack import Client
    from promstack.evals import engine
    from promstack.evals.arena import run_arena
    from promstack.monitoring import alerts

    write_config(root, fake.base_url)
    db = root / ".promstack" / "promstack.db"
    facts: dict[str, Any] = {"db": db}
    with Client(db) as client:
        client.create_prompt("support/answer", V1, id=42, message="first draft",
                             model_config={"model": "openai/good", "temperature": 0.2})
        client.save(42, V2, message="30% shorter: the seed's rewrite")
        client.create_branch(42, "experiment", from_version=2)
        client.save(42, V2 + "한국어로 답하세요.\n", branch="experiment", message="try: answer in Korean")
        client.save(42, V3, message="ask for short answers")
        client.set_label(42, "production", 2, reason="passed the regression suite", force=True)
        client.set_label(42, "staging", 4, reason="trying v4", force=True)
        client.create_prompt("support/refund", "환불 절차를 안내하세요: {{ input }}", message="refund helper",
                             model_config={"model": "openai/gpt-4o-mini"})
        client.save("support/refund", "환불 절차를 단계별로 안내하세요: {{ input }}", message="step by step")
        engine.import_suite(client, text=SEED_CSV, fmt="csv", name="regression", prompt=42,
                            config={"judge_model": "openai/judge", "judge": SEED_JUDGE})
        good = engine.run_tests(client, "regression", prompt=42, version=2)
        bad = engine.run_tests(client, "regression", prompt=42, version=4, models=["openai/bad"])
        facts["runs"] = [good["id"], bad["id"]]
        arena = run_arena(client, suite="regression", models=["openai/q1", "openai/q2", "openai/q3"],
                          judge_model="openai/judge", seed=3)
        facts["arena"] = arena["id"]
        client.gateway.flush()
        (first,) = client.store.db.execute("SELECT coalesce(max(rowid), 0) + 1 FROM calls").fetchone()
        asyncio.run(_calls(client, fake))
        client.gateway.flush()
    spread_calls(db, first)
    with Client(db) as client:
        alerts.evaluate(client.store.db, alerts.load_rules(db), notify=False)
    facts["hours"] = CALLS_PER_HOUR
    return facts


async def _calls(client: Any, fake: Any) -> None:
    """Calls through the gateway as an app makes them: two environments, three models, errors;
    each hour's calls at once, with that hour's latency."""
    n = 0
    for hours, count in CALLS_PER_HOUR.items():
        fake.latency = LATENCY_S[hours]
        batch = []
        for i in range(count):
            n += 1
            env = "production" if n % 3 else "staging"
            model = ("openai/gpt-4o-mini", "openai/gpt-4o")[n % 2]
            if hours in (4, 12) and i == 0:
                model = "openai/fake-500"  # the fake server answers 500: an error row
            prompt = 42 if n % 4 else "support/refund"
            batch.append(client.arun(prompt, {"input": f"질문 {n}: hours={hours}"}, model=model,
                                     user_id=f"user_{n % 5}", environment=env, cache=False))
        await asyncio.gather(*batch, return_exceptions=True)
        client.gateway.flush()  # rows in order of their hour
    fake.latency = 0.0


def spread_calls(db: Path, first: int) -> None:
    """Move each call from rowid `first` on to its hour in CALLS_PER_HOUR (in insertion order),
    minutes apart."""
    now = datetime.now(UTC)
    con = sqlite3.connect(db)
    with con:
        ids = [r[0] for r in con.execute("SELECT rowid FROM calls WHERE rowid >= ? ORDER BY rowid", [first])]
        slots = [(hours, i) for hours, count in CALLS_PER_HOUR.items() for i in range(count)]
        for rowid, (hours, i) in zip(ids, slots, strict=False):
            moment = (now - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
            moment += timedelta(minutes=min(5 * i, 59) if hours else 0)
            moment = min(moment, now - timedelta(seconds=1))
            con.execute("UPDATE calls SET timestamp = ? WHERE rowid = ?",
                        [moment.isoformat(timespec="microseconds").replace("+00:00", "Z"), rowid])
    con.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="dashboard-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def series_of(page_text: str) -> dict[str, Any]:
    start = page_text.index('id="series-data">') + len('id="series-data">')
    return json.loads(page_text[start:page_text.index("</script>", start)])


def gated_llm() -> Any:
    """The eval tests' scripted model server, with a gate: while `gate` is clear, answers wait
    (on the server's loop, so a run stays in progress until the test lets it go on), except
    `allow(n)` more of them."""
    from test_evals_fake import ScriptedLLM

    class GatedLLM(ScriptedLLM):
        def __init__(self) -> None:
            super().__init__()
            self.gate = threading.Event()
            self.gate.set()
            self.allowance = 0

        def allow(self, n: int) -> None:
            self.allowance += n

        async def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes):
            deadline = time.monotonic() + 60
            while not self.gate.is_set() and time.monotonic() < deadline:
                if self.allowance > 0:  # the server's one loop: no other request runs in between
                    self.allowance -= 1
                    break
                await asyncio.sleep(0.01)
            return await super()._respond(method, path, headers, body)

    return GatedLLM()
