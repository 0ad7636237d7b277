"""PromStack: version control, tests, a gateway and deploys for LLM prompts.

    from promstack import Client
    prompt = Client().get_prompt(id=42, version=3)
    print(prompt.render(question="환불하고 싶어요"))
"""

from store.errors import Busy, InvalidInput, MergeConflict, NotFound, PromStackError
from store.models import Branch, Diff, LabelMove, Prompt, PromptVersion

__all__ = [
    "Branch", "Busy", "Client", "Diff", "InvalidInput", "LabelMove", "MergeConflict", "NotFound",
    "Prompt", "PromptVersion", "PromStackError",
]
__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202
    # The SDK's Client opens SQLite through sqlite-utils: load it on first use, so that faces
    # which never touch the store on start-up (`promstack mcp`, `--help`) stay quick.
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module 'promstack' has no attribute {name!r}")
