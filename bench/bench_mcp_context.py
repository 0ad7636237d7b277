"""How much of an assistant's context PromStack's MCP tools take, next to the MCP reference servers.

    python bench/bench_mcp_context.py [--per-tool] [--no-references]

Every conversation that has an MCP server enabled carries its tool list, so its size is paid on
every turn whether a tool is used or not. Goal: PromStack's within 4,000 tokens, every
capability kept.

What is counted, for each tool of the `tools/list` reply: `name`, `description` and
`inputSchema`, the part a client puts in front of the model (Claude's and OpenAI's tool formats
carry exactly these three). `title`, `annotations`, `outputSchema` and `_meta` are for the client
and are not counted; the whole reply is printed too, for reference.
How: `litellm.token_counter(model="gpt-4o", text=json.dumps(tools))`, gpt-4o's o200k tokenizer
over the JSON list of those three fields per tool, as `json.dumps` writes it.

Servers, each listed the same way (the SDK's client over stdio): `promstack mcp` on an empty
workspace, and the reference servers `mcp-server-git` and `mcp-server-time` of
modelcontextprotocol/servers when installed (`pip install mcp-server-git mcp-server-time` in
this environment; they are not PromStack dependencies). A server that is not installed is named
and skipped.

Returns 0 when PromStack's figure meets the goal, 1 when it misses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

GOAL_TOKENS = 4000
TOKENIZER_MODEL = "gpt-4o"
MODEL_FACING = ("name", "description", "inputSchema")
REFERENCES = {"mcp-server-git": ["--repository", "{repo}"], "mcp-server-time": []}


def model_facing(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The part of each `tools/list` entry (wire form: camelCase, no nulls) the model reads."""
    return [{key: tool[key] for key in MODEL_FACING if key in tool} for tool in tools]


def count_tokens(value: Any) -> int:
    """gpt-4o tokens of `value` as JSON (litellm's counter, deterministic and offline)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network for the price map
    import litellm

    return litellm.token_counter(model=TOKENIZER_MODEL, text=json.dumps(value))


def wire(tools: list[Any]) -> list[dict[str, Any]]:
    """SDK `Tool` objects as they travel in `tools/list`."""
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


async def list_tools(command: str, args: list[str], env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=command, args=args, env=env)
    async with Client(params) as client:
        return wire((await client.list_tools()).tools)


def find(command: str) -> str | None:
    """A console script next to this interpreter (the bench's venv), else on PATH."""
    beside = Path(sys.executable).with_name(command)
    return str(beside) if beside.exists() else shutil.which(command)


def measure(tools: list[dict[str, Any]]) -> dict[str, int]:
    return {"tools": len(tools), "model_facing": count_tokens(model_facing(tools)), "whole_reply": count_tokens(tools)}


def main(argv: list[str] | None = None) -> int:
    import anyio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-tool", action="store_true", help="print PromStack's figure per tool")
    parser.add_argument("--no-references", action="store_true", help="skip mcp-server-git and mcp-server-time")
    options = parser.parse_args(argv)

    figures: dict[str, dict[str, int]] = {}
    per_tool: list[tuple[int, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / ".promstack" / "promstack.db"
        db.parent.mkdir()  # a PROMSTACK_DB into a missing folder is refused as a typo
        env = {**os.environ, "PROMSTACK_DB": str(db), "PROMSTACK_USER": "bench"}
        promstack = find("promstack")
        if promstack is None:
            print("promstack is not installed in this environment (pip install -e .)")
            return 2
        ours = anyio.run(list_tools, promstack, ["mcp"], env)
        figures["promstack mcp"] = measure(ours)
        per_tool = sorted(((count_tokens(model_facing([t])), t["name"]) for t in ours), reverse=True)
        if not options.no_references:
            import subprocess

            repo = Path(tmp) / "repo"
            subprocess.run(["git", "init", "-q", str(repo)], check=True)
            for name, args in REFERENCES.items():
                command = find(name)
                if command is None:
                    print(f"{name}: not installed here, skipped (pip install {name})")
                    continue
                listed = anyio.run(list_tools, command, [a.format(repo=repo) for a in args], dict(os.environ))
                figures[name] = measure(listed)

    print(f"tools/list, model-facing part (name, description, inputSchema), {TOKENIZER_MODEL} tokens "
          "by litellm.token_counter over json.dumps:")
    for name, f in figures.items():
        per = f["model_facing"] / f["tools"] if f["tools"] else 0
        print(f"  {name:16} {f['tools']:3} tools  {f['model_facing']:6,} tokens  ({per:5.0f} a tool;"
              f" whole reply with outputSchema and annotations {f['whole_reply']:,})")
    ours_tokens = figures["promstack mcp"]["model_facing"]
    print(f"  ratio to the goal: {ours_tokens / GOAL_TOKENS:.2f} ({ours_tokens:,} / {GOAL_TOKENS:,}; <= 1.00 meets it)")
    for name in REFERENCES:
        if name in figures:
            ref = figures[name]
            print(f"  per tool against {name}: {ours_tokens / figures['promstack mcp']['tools']:.0f} vs "
                  f"{ref['model_facing'] / ref['tools']:.0f} tokens")
    if options.per_tool:
        print("  per tool:")
        for tokens, name in per_tool:
            print(f"    {tokens:5} {name}")
    return 0 if ours_tokens <= GOAL_TOKENS else 1


if __name__ == "__main__":
    sys.exit(main())
