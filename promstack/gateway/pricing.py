"""Prices, without importing litellm.

A model's price is looked up in order (the first that knows the model wins):
1. the call's model config (`input_cost_per_token` / `output_cost_per_token`);
2. the workspace's `.promstack/config.toml`, `[prices."<model>"]` tables;
3. the prices PromStack ships (`promstack/gateway/prices.toml`, the same tables: the models the guide
   names, at the providers' published prices);
4. litellm's price map.
A model none of them knows has no price: its calls are logged with an unknown cost (NULL), and
every total that includes them says so in one sentence (`unpriced_note`). Unknown is never $0.

litellm ships its price map as a JSON file inside the package (`model_prices_and_context_window_
backup.json`). Importing litellm to read it costs seconds; finding the package's folder costs
nothing, so we read the file directly (and `promstack.gateway.tokens` its tokenizers). `find_spec` locates a package without executing its `__init__`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import tomllib
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.errors import InvalidInput

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


SHIPPED_FILE = Path(__file__).with_name("prices.toml")
PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per token, where it came from, and an optional higher tier for long prompts."""

    input: float
    output: float
    source: str  # 'model config', 'workspace config', 'shipped prices', 'litellm'
    above_tokens: int | None = None
    input_above: float | None = None
    output_above: float | None = None

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float:
        tin, tout = int(input_tokens or 0), int(output_tokens or 0)
        per_in, per_out = self.input, self.output
        if self.above_tokens is not None and tin > self.above_tokens:
            per_in = self.input_above if self.input_above is not None else per_in
            per_out = self.output_above if self.output_above is not None else per_out
        return float(per_in * tin + per_out * tout)

    def per_million(self) -> dict[str, Any]:
        out: dict[str, Any] = {"input_per_million": _round(self.input * PER_MILLION),
                               "output_per_million": _round(self.output * PER_MILLION)}
        if self.above_tokens is not None:
            out.update(above_tokens=self.above_tokens,
                       input_per_million_above=_round((self.input_above or self.input) * PER_MILLION),
                       output_per_million_above=_round((self.output_above or self.output) * PER_MILLION))
        return out


def _round(value: float) -> float:
    return float(f"{value:.10g}")


_KEYS = {"input_per_million", "output_per_million", "provider", "aliases", "above_tokens",
         "input_per_million_above", "output_per_million_above"}


def _amount(table: dict[str, Any], key: str, where: str, required: bool) -> float | None:
    value = table.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"{where} needs {key} (US dollars per million tokens), e.g. {key} = 3.0")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or not math.isfinite(value):
        raise InvalidInput(f"{key} in {where} must be a non-negative number of US dollars, not {value!r}")
    return float(value) / PER_MILLION


def parse_prices(data: Any, source: str, where: str) -> dict[str, tuple[Price, str | None]]:
    """`[prices]` tables -> {model id (and each alias): (price, provider)}; a bad entry is an
    InvalidInput naming it, so a typo never silently unprices a model."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(f"[prices] in {where} must hold one table per model, like [prices.\"gpt-4o\"]")
    out: dict[str, tuple[Price, str | None]] = {}
    for model, table in data.items():
        here = f'[prices."{model}"] in {where}'
        if not isinstance(table, dict):
            raise InvalidInput(f"{here} must be a table with input_per_million and output_per_million")
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise InvalidInput(f"{here} has unknown key(s) {', '.join(unknown)}; "
                               f"use {', '.join(sorted(_KEYS))}")
        above = table.get("above_tokens")
        if above is not None and (isinstance(above, bool) or not isinstance(above, int) or above < 0):
            raise InvalidInput(f"above_tokens in {here} must be a whole number of tokens, not {above!r}")
        aliases = table.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            raise InvalidInput(f"aliases in {here} must be a list of model ids")
        provider = table.get("provider")
        if provider is not None and not isinstance(provider, str):
            raise InvalidInput(f"provider in {here} must be a provider name such as \"anthropic\"")
        price = Price(_amount(table, "input_per_million", here, True),  # type: ignore[arg-type]
                      _amount(table, "output_per_million", here, True),  # type: ignore[arg-type]
                      source, above,
                      _amount(table, "input_per_million_above", here, False),
                      _amount(table, "output_per_million_above", here, False))
        for name in (model, *aliases):
            out[name] = (price, provider)
    return out


@functools.cache
def shipped() -> dict[str, tuple[Price, str | None]]:
    """The prices PromStack ships (`promstack/gateway/prices.toml`)."""
    data = tomllib.loads(SHIPPED_FILE.read_text(encoding="utf-8"))
    return parse_prices(data.get("prices"), "shipped prices", str(SHIPPED_FILE))


_workspace_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def workspace(config: Any) -> dict[str, tuple[Price, str | None]]:
    """The workspace's `[prices]` tables (a `promstack.config.Config`), parsed once per file load."""
    if config is None:
        return {}
    found = _workspace_cache.get(config)
    if found is None:
        where = str(getattr(config, "path", None) or ".promstack/config.toml")
        found = parse_prices((getattr(config, "data", None) or {}).get("prices"), "workspace config", where)
        _workspace_cache[config] = found
    return found


def _find(table: dict[str, tuple[Price, str | None]], model: str) -> Price | None:
    """`model` as given; else without its `provider/` prefix when the entry names that provider
    (or names none)."""
    hit = table.get(model)
    if hit is not None:
        return hit[0]
    if "/" in model:
        provider, _, rest = model.partition("/")
        hit = table.get(rest)
        if hit is not None and hit[1] in (None, provider):
            return hit[0]
    return None


def _litellm_price(model: str) -> Price | None:
    entry = lookup(model)
    if not entry:
        return None
    per_in, per_out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if per_in is None and per_out is None:
        return None  # listed without prices (a model litellm only routes) is not priced
    return Price(float(per_in or 0.0), float(per_out or 0.0), "litellm")


def price(model: str, *, config: Any = None, model_config: dict[str, Any] | None = None) -> Price | None:
    """The price in force for `model`, or None when nobody has priced it (see the module's order)."""
    model_config = model_config or {}
    per_in, per_out = model_config.get("input_cost_per_token"), model_config.get("output_cost_per_token")
    if per_in is not None or per_out is not None:
        for key, value in (("input_cost_per_token", per_in), ("output_cost_per_token", per_out)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise InvalidInput(f"{key} in the model config must be a non-negative number of US dollars per token")
        fallback = _find(workspace(config), model) or _find(shipped(), model) or _litellm_price(model)
        return Price(float(per_in if per_in is not None else (fallback.input if fallback else 0.0)),
                     float(per_out if per_out is not None else (fallback.output if fallback else 0.0)),
                     "model config")
    return _find(workspace(config), model) or _find(shipped(), model) or _litellm_price(model)


def cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    config: Any = None,
    input_cost_per_token: float | None = None,
    output_cost_per_token: float | None = None,
) -> float | None:
    """USD for one call, or None when the model has no price (unknown, never $0)."""
    model_config = {k: v for k, v in (("input_cost_per_token", input_cost_per_token),
                                      ("output_cost_per_token", output_cost_per_token)) if v is not None}
    found = price(model, config=config, model_config=model_config)
    return None if found is None else found.cost(input_tokens, output_tokens)


def shipped_provider(model: str) -> str | None:
    """The provider the shipped prices name for a bare model id (claude-3-5-haiku-latest)."""
    hit = shipped().get(model)
    return hit[1] if hit else None


def price_table(config: Any = None, models: list[str] | None = None) -> list[dict[str, Any]]:
    """Every model the shipped and workspace prices name (or just `models`), with the price in
    force and where it comes from: what `promstack cost prices` prints."""
    names = list(models) if models else sorted(set(shipped()) | set(workspace(config)))
    rows = []
    for name in names:
        found = price(name, config=config)
        rows.append({"model": name, "source": found.source if found else None,
                     **(found.per_million() if found else {"input_per_million": None,
                                                            "output_per_million": None})})
    return rows


def unpriced_note(calls: int, models: list[str] | tuple[str, ...] | set[str] | None) -> str | None:
    """The one sentence every total that includes unpriced calls carries; None when there are none."""
    if not calls:
        return None
    names = sorted({m for m in (models or []) if m})
    which = f" ({'model' if len(names) == 1 else 'models'} {', '.join(names)})" if names else ""
    return (f"{calls:,} call{'' if calls == 1 else 's'} unpriced{which}: add a price in config "
            "([prices] in .promstack/config.toml; 'promstack cost prices' shows the table)")


def no_price_note(models: list[str] | set[str]) -> str | None:
    """The sentence for models that cannot be priced at all (a projection, not logged calls)."""
    names = sorted({m for m in models if m})
    if not names:
        return None
    return (f"no price for {'model' if len(names) == 1 else 'models'} {', '.join(names)}: add a price in "
            "config ([prices] in .promstack/config.toml; 'promstack cost prices' shows the table)")
