"""PromStack: version control, tests, a gateway and deploys for LLM prompts.

    from promstack import Client
    prompt = Client().get_prompt(id=42, version=3)
    print(prompt.render(question="환불하고 싶어요"))
"""

from store.errors import Busy, InvalidInput, MergeConflict, NotFound, PromStackError
from store.models import Branch, Diff, LabelMove, Prompt, PromptVersion

from .client import Client

__all__ = [
    "Branch", "Busy", "Client", "Diff", "InvalidInput", "LabelMove", "MergeConflict", "NotFound",
    "Prompt", "PromptVersion", "PromStackError",
]
__version__ = "0.1.0"
