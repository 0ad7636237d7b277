"""`make run` outside a workspace: a new store filled with the seed's examples."""

from __future__ import annotations

from promstack import Client
from promstack.evals import engine
from promstack.workspace import ensure_workspace


def test_a_new_workspace_holds_the_seeds_examples(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMSTACK_DB")
    path = ensure_workspace(tmp_path)
    assert path == tmp_path / ".promstack" / "promstack.db"
    with Client(path) as client:
        third = client.get_prompt(id=42, version=3)  # the seed's getPrompt({id: 42, version: 3})
        assert third.template.startswith("전문가로서 답변하세요. 예시 포함.")
        assert third.render(input="환불하고 싶어요").endswith("질문: 환불하고 싶어요\n")
        assert "톤: 정중하고 일관되게" in third.render(input="x")  # the included shared/tone
        assert client.labels(42) == {"latest": 3, "production": 2, "staging": 3}
        suite = engine.show_suite(client, "regression")
        assert suite["prompt_id"] == 42
        assert [(c["input"], c["expected"]) for c in suite["cases"]] == [
            ("이 제품의 장점은?", "긍정적 답변"), ("환불하고 싶어요", "환불 절차 안내"), ("욕설 포함 입력", "정중한 거절"),
        ]
        assert suite["config"]["judge"] == {
            "criteria": ["응답이 질문에 적절한가?", "톤이 일관적인가?", "잘못된 정보가 없는가?"], "scoring": "1-5",
        }
        versions = len(client.history(42))
    # A second start, from a folder inside, finds the workspace and imports nothing again.
    (tmp_path / "sub").mkdir()
    assert ensure_workspace(tmp_path / "sub") == path
    with Client(path) as client:
        assert len(client.history(42)) == versions
