"""The one token counter: the tokenizer a model uses, counting a text or chat messages, for the
gateway (providers that report no usage), budgets (a call's estimate) and the cost advice.

o200k for GPT-4o-era OpenAI models, cl100k for older ones, Anthropic's for Claude, cl100k as
the estimate for the rest. litellm bundles these files (`litellm_core_utils/tokenizers/`), so
they are read from its folder without importing litellm, and tiktoken never downloads one; with
none of them, ~4 characters a token.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from .pricing import litellm_dir

_O200K = re.compile(r"^(?:openai/|azure/)?(?:gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|chatgpt-4o)")


@functools.cache
def _anthropic_tokenizer() -> Any:
    """A tokenizers.Tokenizer for Claude, or None."""
    folder = litellm_dir()
    path = folder / "litellm_core_utils" / "tokenizers" / "anthropic_tokenizer.json" if folder else None
    if path is None or not path.exists():
        return None
    try:
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(path))
    except Exception:
        return None


@functools.cache
def _tiktoken(name: str) -> Any:
    """A tiktoken Encoding from litellm's bundled files, or None (never a download)."""
    folder = litellm_dir()
    if folder is not None and "TIKTOKEN_CACHE_DIR" not in os.environ:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(folder / "litellm_core_utils" / "tokenizers")
    try:
        import tiktoken

        return tiktoken.get_encoding(name)
    except Exception:  # no tiktoken, or no bundled file: estimate instead of fetching
        return None


def tokenizer_name(model: str | None) -> str:
    """Which tokenizer counts for `model` (see the module's docstring)."""
    model = (model or "").lower()
    if _O200K.match(model):
        return "o200k_base"
    if "claude" in model and _anthropic_tokenizer() is not None:
        return "anthropic"
    return "cl100k_base"


def _counter(model: str | None) -> Any:
    """text -> tokens for `model`, or None when no tokenizer is at hand."""
    name = tokenizer_name(model)
    if name == "anthropic":
        return lambda text: len(_anthropic_tokenizer().encode(text).ids)
    encoding = _tiktoken(name) or _tiktoken("cl100k_base")
    if encoding is None:
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def count_tokens(content: str | list[dict[str, Any]], model: str | None = None) -> int:
    """Tokens in a text, or in chat messages (their contents plus ~4 tokens of framing each)."""
    if isinstance(content, str):
        texts, framing = [content], 0
    else:
        texts = [str(m.get("content") or "") for m in content]
        framing = 4 * len(content) + 3
    counter = _counter(model)
    if counter is None:
        return framing + sum(max(1, len(t) // 4) for t in texts if t)
    return framing + sum(counter(t) for t in texts)
