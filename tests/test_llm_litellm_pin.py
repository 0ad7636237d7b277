"""The facts behind the litellm pin (docs/gateway.md), checked on the installed version."""

from __future__ import annotations

import asyncio
from importlib.metadata import version

import pytest

EXCLUDED = {"1.82.7", "1.82.8"}  # the malicious releases of March 2026


def test_installed_litellm_is_in_the_pinned_range():
    installed = version("litellm")
    assert installed not in EXCLUDED
    major, minor, *_ = (int(x) for x in installed.split(".")[:3])
    assert (major, minor) == (1, 101), installed
    pyproject = (__import__("pathlib").Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert '"litellm>=1.101.6,<1.102,!=1.82.7,!=1.82.8"' in pyproject


def test_litellm_cache_hits_and_disk_backend_work_on_the_pin(fake_llm, tmp_path):
    """1.110 crashed on the first cache hit without the proxy extras and dropped the disk
    backend; on the pin both work (litellm's cache is not on PromStack's path, but the pin
    keeps it usable for anyone calling litellm directly)."""
    from promstack.gateway import load_litellm

    litellm = load_litellm()
    from litellm.caching.caching import Cache

    saved = litellm.cache
    try:
        litellm.cache = Cache(type="disk", disk_cache_dir=str(tmp_path / "litellm-cache"))
        kwargs = {"model": "openai/fake-model", "api_base": fake_llm.base_url, "api_key": "no-key",
                  "messages": [{"role": "user", "content": "cache me"}], "caching": True}
        first = asyncio.run(litellm.acompletion(**kwargs))
        second = asyncio.run(litellm.acompletion(**kwargs))
    finally:
        litellm.cache = saved
    assert second.choices[0].message.content == first.choices[0].message.content
    assert len(fake_llm.requests) == 1, "the second call should have been a cache hit"


@pytest.mark.parametrize("name", ["LITELLM_LOCAL_MODEL_COST_MAP", "HF_HUB_OFFLINE"])
def test_litellm_loads_offline(name):
    import os

    from promstack.gateway import load_litellm

    load_litellm()
    assert os.environ[name] in ("True", "1")
