"""A scripted fake model for the eval tests, and the workspace they run in.

`tests/fake_llm.py` answers every request the same way; evals need answers that depend on the
request: a model under test that answers well or badly, a judge that scores what it reads (or
answers garbage), a pairwise judge with or without position bias, logprobs over score tokens.
`ScriptedLLM` is that server: the same real HTTP server with a `responder(request) -> text`.

Models (the part after `openai/`):
- `good`  answers "GOOD answer: <input>";  `bad` answers "bad answer";
- `q1`, `q2`, `q3`: answers of known quality ("QUALITY=n") for the arena;
- `judge`: scores 5 on every criterion for an answer containing GOOD, else 1;
- `judge-garbage`: answers prose, never JSON;  `judge-passfield`: score 1 with "pass": true;
- `judge-logprobs`: scores 4, with logprobs putting 0.6 on "4" and 0.4 on "5";
- `judge-badonce`: the first time it sees a question, a reply of the wrong shape (one score too
  few); asked again, the `judge` answer;  `judge-short`: always one score too few;
- `judge-four`: scores 4 of 5 (75/100) on every criterion;
- `judge-tie`: (pairwise) calls every match a tie;
- `judge-biased`: (pairwise) picks the better answer when qualities differ by 2 or more, else "A".
"""

from __future__ import annotations

import contextvars
import json
import math
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from fake_llm import FakeLLM

_reply: contextvars.ContextVar[str | None] = contextvars.ContextVar("scripted_reply", default=None)
_seen: set[str] = set()  # judge-badonce: the questions it has answered badly once
_seen_lock = threading.Lock()


class ScriptedLLM(FakeLLM):
    def __init__(self) -> None:
        self._fixed: str | None = None
        super().__init__()
        self.responder = respond
        self.counts: dict[str, int] = {}
        self._count_lock = threading.Lock()

    @property
    def reply(self) -> str | None:  # per request (contextvar), else the fixed reply
        return _reply.get() or self._fixed

    @reply.setter
    def reply(self, value: str | None) -> None:
        self._fixed = value

    def reset(self) -> None:
        super().reset()
        self.responder = respond
        with _seen_lock:
            _seen.clear()
        with self._count_lock:
            self.counts = {}

    async def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes):
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = None
        model = str((request or {}).get("model", ""))
        _reply.set(self.responder(request) if request and self.responder else None)
        with self._count_lock:
            self.counts[model] = self.counts.get(model, 0) + 1
        status, extra, payload = await super()._respond(method, path, headers, body)
        if status == 200 and model == "judge-logprobs" and request and request.get("logprobs"):
            data = json.loads(payload)
            text = data["choices"][0]["message"]["content"]
            data["choices"][0]["logprobs"] = {"content": score_logprobs(text)}
            payload = json.dumps(data, ensure_ascii=False).encode()
        return status, extra, payload


def score_logprobs(text: str) -> list[dict[str, Any]]:
    """Tokens that reassemble `text`, with a 0.6/0.4 spread over "4"/"5" at each score digit."""
    tokens = re.findall(r"\d+|\D+", text)
    out = []
    for t in tokens:
        item: dict[str, Any] = {"token": t, "logprob": -0.01, "top_logprobs": []}
        if t == "4":
            item["logprob"] = math.log(0.6)
            item["top_logprobs"] = [{"token": "4", "logprob": math.log(0.6)},
                                    {"token": "5", "logprob": math.log(0.4)}]
        out.append(item)
    return out


def _user(request: dict[str, Any]) -> str:
    return next((m.get("content") or "" for m in reversed(request.get("messages") or [])
                 if m.get("role") == "user"), "")


def _system(request: dict[str, Any]) -> str:
    return next((m.get("content") or "" for m in request.get("messages") or [] if m.get("role") == "system"), "")


def _quality(text: str) -> int:
    found = re.search(r"QUALITY=(\d)", text)
    return int(found.group(1)) if found else 0


def respond(request: dict[str, Any]) -> str | None:
    model = str(request.get("model", ""))
    system, user = _system(request), _user(request)
    if "strict, fair evaluator" in system:
        answer = user.split("Answer to evaluate:\n", 1)[-1].split("\nCriteria:", 1)[0]
        n = len(re.findall(r"^\d+\. ", user.split("Criteria:", 1)[-1], re.M))
        if model == "judge-garbage":
            return "I think the answer is pretty good overall!"
        if model == "judge-passfield":
            return json.dumps({"pass": True, "scores": [
                {"criterion": i + 1, "score": 1, "reason": "Poor."} for i in range(n)]})
        if model == "judge-logprobs":
            return json.dumps({"scores": [{"criterion": i + 1, "score": 4, "reason": "Fine."} for i in range(n)]})
        if model == "judge-four":
            return json.dumps({"scores": [{"criterion": i + 1, "score": 4, "reason": "Mostly."} for i in range(n)]})
        if model in ("judge-badonce", "judge-short"):
            with _seen_lock:
                first = user not in _seen
                _seen.add(user)
            if first or model == "judge-short":
                return json.dumps({"scores": [{"criterion": i + 1, "score": 3, "reason": "Meh."}
                                              for i in range(n - 1)]})
        score = 5 if "GOOD" in answer else 1
        return json.dumps({"scores": [
            {"criterion": i + 1, "score": score, "reason": "Good." if score == 5 else "Off target."}
            for i in range(n)]}, ensure_ascii=False)
    if "compare two AI answers" in system:
        a = _quality(user.split("[Answer A]", 1)[-1].split("[Answer B]", 1)[0])
        b = _quality(user.split("[Answer B]", 1)[-1])
        if model == "judge-garbage":
            return "Both are nice."
        if model == "judge-tie":
            return json.dumps({"winner": "tie", "reason": "Equally good."})
        if model == "judge-biased" and abs(a - b) < 2:
            return json.dumps({"winner": "A", "reason": "The first one."})
        winner = "A" if a > b else "B" if b > a else "tie"
        return json.dumps({"winner": winner, "reason": f"Quality {a} vs {b}."})
    if model == "good":
        return f"GOOD answer: {user[-80:]}"
    if model == "bad":
        return "bad answer"
    if re.fullmatch(r"q\d", model):
        return f"QUALITY={model[1]} answer to {user[-40:]}"
    return None  # the fake's default echo


# ---- fixtures ---------------------------------------------------------------------------------

_server: ScriptedLLM | None = None


@pytest.fixture(scope="session")
def _scripted_server():
    global _server
    _server = ScriptedLLM().start()
    yield _server
    _server.stop()


def write_config(root: Path, base_url: str) -> None:
    folder = root / ".promstack"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(
        f'[providers.openai]\napi_base = "{base_url}"\n\n'
        "[gateway]\nretry_initial = 0.01\nretry_max_wait = 0.05\nmax_retries = 2\n",
        encoding="utf-8",
    )


@pytest.fixture
def scripted(_scripted_server, isolated_store):
    """The scripted server, reset; the test's workspace routes openai/* to it."""
    _scripted_server.reset()
    write_config(isolated_store.parent.parent, _scripted_server.base_url)
    yield _scripted_server
    _scripted_server.reset()


SEED_CSV = 'input,expected_output\n"이 제품의 장점은?","긍정적 답변"\n"환불하고 싶어요","환불 절차 안내"\n"욕설 포함 입력","정중한 거절"\n'
SEED_JUDGE = {"criteria": ["응답이 질문에 적절한가?", "톤이 일관적인가?", "잘못된 정보가 없는가?"], "scoring": "1-5"}


@pytest.fixture
def workspace(scripted, client, tmp_path):
    """The seed's workspace: prompt 42, tests/prompts/regression.csv tied to it, judge.json."""
    client.create_prompt("support/answer", "전문가로서 답변하세요. 예시 포함.\n질문: {{ input }}\n", id=42,
                         model_config={"model": "openai/good", "temperature": 0.2})
    folder = tmp_path / "tests" / "prompts"
    folder.mkdir(parents=True)
    (folder / "regression.csv").write_text(SEED_CSV, encoding="utf-8")
    (folder / "regression.yml").write_text("prompt: 42\njudge_model: openai/judge\n", encoding="utf-8")
    (tmp_path / "judge.json").write_text(json.dumps(SEED_JUDGE, ensure_ascii=False, indent=1), encoding="utf-8")
    return tmp_path


# ---- the helper's own checks ------------------------------------------------------------------


def test_scripted_answers_by_model_and_role():
    judge = respond({"model": "judge", "messages": [
        {"role": "system", "content": "You are a strict, fair evaluator of AI answers."},
        {"role": "user", "content": "Question:\nq\n\nAnswer to evaluate:\nGOOD answer\n\nCriteria:\n1. a\n2. b"}]})
    assert [s["score"] for s in json.loads(judge)["scores"]] == [5, 5]
    assert respond({"model": "bad", "messages": [{"role": "user", "content": "x"}]}) == "bad answer"
    tokens = score_logprobs('{"score": 4}')
    assert "".join(t["token"] for t in tokens) == '{"score": 4}'
