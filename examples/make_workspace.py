"""Build examples/workspace.json, the example store that `make run` serves outside a workspace.

It is made from the source document's own examples: the support prompt (id 42) whose third
version is the document's "30% shorter" rewrite, a shared tone prompt it includes, and labels.
Run it again after changing it: `python examples/make_workspace.py`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from promstack import Client  # noqa: E402

LONG = (
    "당신은 세계 최고의 전문가로서, 사용자의 모든 질문에\n"
    "친절하고 전문적으로 답변해야 합니다. 답변할 때는\n"
    "항상 구체적인 예시를 들어주세요.\n"
)
SHORT = "전문가로서 답변하세요. 예시 포함.\n"
QUESTION = "\n질문: {{ input }}\n"


def build(path: Path) -> dict:
    with Client(path, actor="promstack-examples") as client:
        client.create_prompt(
            "shared/tone", "톤: 정중하고 일관되게. 욕설에는 정중하게 거절하세요.\n",
            description="Tone rules every support prompt includes", message="Tone rules",
        )
        client.create_prompt(
            "support/answer", LONG + QUESTION, id=42,
            model_config={"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 400},
            description="Answers customer questions (the seed's getPrompt({id: 42}))",
            message="First version",
        )
        client.save(42, LONG + '{% include "shared/tone" %}' + QUESTION, message="Include the shared tone")
        client.save(42, SHORT + '{% include "shared/tone" %}' + QUESTION,
                    message="30% shorter: same instructions, fewer tokens")
        # Gated environments: forced with a reason (building the examples calls no model).
        client.set_label(42, "production", 2, reason="passed regression", force=True)
        client.set_label(42, "staging", 3, reason="A/B against production", force=True)
        client.create_prompt(
            "support/refund",
            [
                {"role": "system", "content": "You are a support agent. Explain the refund procedure step by step."},
                {"role": "user", "content": "{{ input }}"},
            ],
            model_config={"model": "gpt-4o-mini", "temperature": 0},
            description="A chat prompt: refund procedure", message="First version",
        )
        return client.export()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        document = build(Path(tmp) / "promstack.db")
    (HERE / "workspace.json").write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'workspace.json'}: {len(document['prompts'])} prompts")
