"""Prices and token counts from litellm's data, without importing litellm.

litellm ships its price map as a JSON file inside the package (`model_prices_and_context_window_
backup.json`) and the tiktoken encodings under `litellm_core_utils/tokenizers/`. Importing
litellm to read them costs seconds; finding the package's folder costs nothing, so we read the
files directly. `find_spec` locates a package without executing its `__init__`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

PRICE_FILE = "model_prices_and_context_window_backup.json"


@functools.cache
def litellm_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def price_map() -> dict[str, dict[str, Any]]:
    """litellm's model map: model name -> prices, provider, context window. Empty if absent."""
    folder = litellm_dir()
    if folder is None or not (folder / PRICE_FILE).exists():
        return {}
    data = json.loads((folder / PRICE_FILE).read_text(encoding="utf-8"))
    data.pop("sample_spec", None)
    return data


@functools.lru_cache(maxsize=1024)
def lookup(model: str) -> dict[str, Any] | None:
    """The map's entry for `model`, trying it as given and without its `provider/` prefix."""
    prices = price_map()
    if model in prices:
        return prices[model]
    if "/" in model:
        provider, _, rest = model.partition("/")
        if rest in prices:
            entry = prices[rest]
            # 'openai/gpt-4o' is gpt-4o; 'groq/gpt-4o' is not priced like OpenAI's.
            if entry.get("litellm_provider") in (provider, None) or provider == "openai":
                return entry
    return None


def provider_of(model: str) -> str | None:
    """`openai` for 'gpt-4o' or 'openai/gpt-4o'; the prefix when one is given; else the map's."""
    if "/" in model:
        return model.split("/", 1)[0]
    entry = lookup(model)
    return entry.get("litellm_provider") if entry else None


def cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    input_cost_per_token: float | None = None,
    output_cost_per_token: float | None = None,
) -> float:
    """USD for one call. Explicit per-token prices (from a model config) win over the map; a
    model the map does not know (a local server) costs 0.0."""
    entry = lookup(model) or {}
    per_in = input_cost_per_token if input_cost_per_token is not None else entry.get("input_cost_per_token")
    per_out = output_cost_per_token if output_cost_per_token is not None else entry.get("output_cost_per_token")
    return float((per_in or 0.0) * (input_tokens or 0) + (per_out or 0.0) * (output_tokens or 0))


def is_known(model: str) -> bool:
    return lookup(model) is not None


@functools.cache
def _encoding():  # noqa: ANN202 - a tiktoken Encoding, or None
    folder = litellm_dir()
    if folder is not None and "TIKTOKEN_CACHE_DIR" not in os.environ:
        # litellm bundles the encodings so that tiktoken never downloads them.
        os.environ["TIKTOKEN_CACHE_DIR"] = str(folder / "litellm_core_utils" / "tokenizers")
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # no tiktoken, or no bundled file: estimate instead of fetching
        return None


def count_tokens(content: str | list[dict[str, Any]]) -> int:
    """Tokens in a text or chat messages (cl100k; ~4 tokens of framing per message), for
    providers that do not report usage. An estimate for non-OpenAI models."""
    if isinstance(content, str):
        texts, framing = [content], 0
    else:
        texts = [str(m.get("content") or "") for m in content]
        framing = 4 * len(content) + 3
    encoding = _encoding()
    if encoding is None:
        return framing + sum(max(1, len(t) // 4) for t in texts if t)
    return framing + sum(len(encoding.encode(t, disallowed_special=())) for t in texts)
