"""Dotprompt's language-neutral spec suite, run through PromStack's path for `.prompt` files.

Google's Dotprompt repository keeps a spec suite (`spec/**/*.yaml`: a template, data, and the
messages and metadata every implementation must produce) that its JS, Go, Python and Rust
implementations run. This runs each case the way a `.prompt` file reaches a model here: the
watcher's parser (`store.formats.parse("dotprompt", ...)`), a version in a store, and the
store's render; then compares what it can with the case's expectation:

- `messages`: the rendered messages, turned back into Dotprompt's shape (`assistant` is
  `model`; content parts `{text}` / `{media}`);
- `model`, `config`, `input.schema`, `output.schema`, `input.default`: from the version's model
  config; `ext` and `raw` (front matter PromStack keeps in the file, not in the version) fail.

Partials (`partials`, `resolverPartials`) become stored prompts of those names, named schemas
(`schemas`) `Name.schema.json` files next to the prompt; `data.input`
is the variables, `data.context` the `@` data (`@state` ...), `data.messages` the `history`;
`options.input.default` becomes declared defaults. The suite is not part of this repository:
point at a checkout (or a bare git directory) of github.com/google/dotprompt.

    DOTPROMPT_DIR=/path/to/dotprompt python -m bench.bench_dotprompt_spec [--verbose]
    python -m bench.bench_dotprompt_spec /path/to/dotprompt

Goal (issue 17): >= 95 % of the cases come out as the reference says.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

GOAL = 0.95


def _spec_files(root: Path) -> dict[str, str]:
    """{relative path: text} of spec/**/*.yaml in a checkout or a bare git directory."""
    if (root / "spec").is_dir():
        return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
                for p in sorted((root / "spec").rglob("*.yaml"))}
    names = subprocess.run(["git", f"--git-dir={root}", "ls-tree", "-r", "--name-only", "HEAD", "spec"],
                           capture_output=True, text=True, check=True).stdout.split()
    return {n: subprocess.run(["git", f"--git-dir={root}", "show", f"HEAD:{n}"], capture_output=True,
                              text=True, check=True).stdout for n in names if n.endswith(".yaml")}


def _to_dotprompt(rendered: Any) -> list[dict[str, Any]]:
    if isinstance(rendered, str):
        return [{"role": "user", "content": [{"text": rendered}]}] if rendered.strip() else []
    out = []
    for m in rendered:
        content = m["content"]
        if isinstance(content, str):
            parts = [{"text": content}]
        else:
            parts = []
            for p in content:
                if p.get("type") == "image_url":
                    media = {"url": p["image_url"]["url"]}
                    if p["image_url"].get("format"):
                        media["contentType"] = p["image_url"]["format"]
                    parts.append({"media": media})
                else:
                    parts.append({"text": p.get("text", "")})
        message = {"role": "model" if m["role"] == "assistant" else m["role"], "content": parts}
        if m.get("metadata"):
            message["metadata"] = m["metadata"]
        out.append(message)
    return out


def _options(config: dict[str, Any]) -> dict[str, Any]:
    from store.formats.common import CAMEL

    skip = {"model", "variables", "template_format", "input_schema", "output_schema", "output_format"}
    return {CAMEL.get(k, k): v for k, v in config.items() if k not in skip}


def run_case(suite: dict[str, Any], case: dict[str, Any], n: int) -> str | None:
    """None when the case comes out as the spec says, else a one-line reason."""
    from store import Store, formats
    from store.errors import PromStackError

    store = Store(None, actor="bench")
    try:
        pending = {**(suite.get("partials") or {}), **(suite.get("resolverPartials") or {})}
        for _ in range(len(pending)):  # a partial that includes another is stored after it
            for name, source in list(pending.items()):
                try:
                    store.prompts.create_prompt(name, source, model_config={"template_format": "handlebars"})
                    del pending[name]
                except PromStackError:
                    pass
        # Named schemas (`schemas:`, registered with the Dotprompt object in the reference) are,
        # in a workspace, `Name.schema.json` files next to the prompt.
        with tempfile.TemporaryDirectory() as folder:
            for name, schema in (suite.get("schemas") or {}).items():
                Path(folder, f"{name}.schema.json").write_text(json.dumps(schema), encoding="utf-8")
            try:
                parsed = formats.parse("dotprompt", suite["template"].replace("\r\n", "\n"),
                                       path=Path(folder, "case.prompt"), root=folder)
            except PromStackError as exc:
                return f"file refused: {exc}"
        config = dict(parsed.model_config or {})
        defaults = ((case.get("options") or {}).get("input") or {}).get("default") or {}
        if defaults:
            config["variables"] = {**(config.get("variables") or {}),
                                   **{k: {"type": "string", "default": v} for k, v in defaults.items()}}
        data = {**(suite.get("data") or {}), **(case.get("data") or {})}
        values = dict(data.get("input") or {})
        values.update({f"@{k}": v for k, v in (data.get("context") or {}).items()})
        history = [*((suite.get("data") or {}).get("messages") or []), *((case.get("data") or {}).get("messages") or [])]
        if history:
            values["history"] = history
        try:
            version = store.prompts.create_prompt(f"case{n}", parsed.template, model_config=config)
            rendered = store.prompts.render(version, values)
        except PromStackError as exc:
            return f"refused: {exc}"
        expect = case.get("expect") or {}
        got = _to_dotprompt(rendered)
        if got != expect.get("messages", []):
            return f"messages differ: got {got!r}, expected {expect.get('messages')!r}"
        if "model" in expect and version.model_config.get("model") != expect["model"]:
            return f"model differs: {version.model_config.get('model')!r}"
        if "config" in expect and _options(version.model_config) != expect["config"]:
            return f"config differs: {_options(version.model_config)!r}"
        for side, key in (("input", "input_schema"), ("output", "output_schema")):
            want = (expect.get(side) or {}).get("schema")
            if want is not None and version.model_config.get(key) != want:
                return f"{side}.schema differs: got {version.model_config.get(key)!r}, expected {want!r}"
        want = (expect.get("input") or {}).get("default")
        if want is not None:
            have = {v["name"]: v["default"] for v in version.variables if v.get("default") not in (None, "")}
            if have != want:
                return f"input.default differs: {have!r}"
        if expect.get("ext"):
            return "ext: namespaced front-matter keys stay in the file; a version does not carry them"
        if expect.get("raw"):
            return "raw: the front matter as written stays in the file; a version does not carry it"
        return None
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dotprompt", nargs="?", default=os.environ.get("DOTPROMPT_DIR"),
                        help="a checkout (or bare git directory) of google/dotprompt; env DOTPROMPT_DIR")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every failing case's reason")
    args = parser.parse_args(argv)
    if not args.dotprompt or not Path(args.dotprompt).exists():
        print("bench_dotprompt_spec: skipped, no Dotprompt checkout (set DOTPROMPT_DIR or pass its path)")
        return 0
    files = _spec_files(Path(args.dotprompt))
    passed = total = 0
    failures: list[tuple[str, str]] = []
    for rel, text in files.items():
        suites = yaml.safe_load(text) or []
        for suite in suites:
            for case in suite.get("tests") or []:
                total += 1
                reason = run_case(suite, case, total)
                where = f"{rel} {suite.get('name')}: {case.get('desc')}"
                if reason is None:
                    passed += 1
                else:
                    failures.append((where, reason))
    rate = passed / total if total else 0.0
    for where, reason in failures:
        print(f"FAIL {where}\n     {reason[:300] if args.verbose else reason[:120]}")
    print(f"dotprompt spec: {passed}/{total} cases pass = {rate:.1%} (goal >= {GOAL:.0%}; "
          f"ratio to goal {rate / GOAL:.2f})")
    return 0 if rate >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
