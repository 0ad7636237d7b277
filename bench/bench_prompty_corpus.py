"""How many `.prompty` files from an export of Microsoft's prompty repository PromStack loads,
stores and renders with their own sample, against all the files (every one is a sample, test or
docs example the runtime accepts).

    python bench/bench_prompty_corpus.py /path/to/prompty-export      (or PROMPTY_CORPUS=...)

Each file is read as the watcher reads it, saved into a scratch store and rendered through the
store's render path (the one the gateway and `Client.render` use) with its values: v1's
`sample:` (a mapping or a `${file:...}` next to it), else each input's `example`/`sample`.
Inputs without a value are left out: the runtime renders them empty, and so must PromStack.
Failures are listed with their one-sentence reason. No export: a message and exit 0.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _sample(path: Path, text: str) -> dict[str, Any]:
    from store.formats.common import split_front_matter

    try:
        front = split_front_matter(text.replace("\r\n", "\n"))[0] or {}
    except Exception:
        return {}
    sample = front.get("sample")
    if isinstance(sample, str) and sample.startswith("${file:"):
        ref = (path.parent / sample[len("${file:"):].rstrip("}")).resolve()
        try:
            sample = json.loads(ref.read_text())
        except (OSError, ValueError):
            sample = {}
    if isinstance(sample, dict):
        return sample
    values: dict[str, Any] = {}
    inputs = front.get("inputs")
    if isinstance(inputs, dict):
        inputs = [{"name": k, **v} for k, v in inputs.items() if isinstance(v, dict)]
    if isinstance(front.get("inputSchema"), dict):
        inputs = front["inputSchema"].get("properties")
    for prop in inputs if isinstance(inputs, list) else []:
        if isinstance(prop, dict) and prop.get("name"):
            for key in ("example", "sample"):
                if key in prop:
                    values[str(prop["name"])] = prop[key]
                    break
    return values


def declared(parsed: Any) -> dict[str, Any]:
    return (parsed.model_config or {}).get("variables") or {}


def run(corpus: Path) -> int:
    from store import Store, formats
    from store.errors import PromStackError

    files = sorted(p for p in corpus.rglob("*.prompty") if p.is_file())
    if not files:
        print(f"no .prompty files under {corpus}")
        return 0
    failures: list[tuple[str, str, str]] = []
    stricter: list[tuple[str, str]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(os.path.join(tmp, "bench.db"))
        for i, path in enumerate(files):
            rel = str(path.relative_to(corpus))
            text = path.read_text(encoding="utf-8")
            step = "load"
            try:
                try:
                    parsed = formats.parse("prompty", text, path=path, root=corpus)
                except TypeError:  # a PromStack before `${file:...}` references (the "before" figure)
                    parsed = formats.parse("prompty", text)
                step = "store"
                version = store.prompts.create_prompt(f"p{i}", parsed.template,
                                                      model_config=parsed.model_config or {})
                step = "render"
                values = _sample(path, text)
                try:
                    version.render(**values)
                except PromStackError:
                    # A variable the file neither declares nor samples: PromStack requires it
                    # where the runtime renders it empty. Counted apart, rendered with "x".
                    missing = [v["name"] for v in version.variables if v["required"] and v["name"] not in values]
                    undeclared = [n for n in missing if n not in declared(parsed)]
                    if not missing:
                        raise
                    # A `required: true` input without a sample: the runtime needs a value too.
                    version.render(**values, **{n: "x" for n in missing})
                    if undeclared:
                        stricter.append((rel, ", ".join(undeclared)))
            except PromStackError as exc:
                failures.append((rel, step, str(exc)))
        store.close()
    ok = len(files) - len(failures)
    print(f"prompty corpus: {ok}/{len(files)} files load, store and render ({ok / len(files):.0%} of all "
          f"the runtime accepts; {ok - len(stricter)} with the file's own values alone) "
          f"in {time.perf_counter() - started:.2f} s")
    if stricter:
        print(f"  of which {len(stricter)} use a variable they do not declare, which PromStack requires "
              "(the runtime renders it empty): rendered with a value for it")
        for rel, names in stricter:
            print(f"    {rel}: {names}")
    for rel, step, reason in failures:
        print(f"  {rel}: {step}: {reason}")
    return 0 if not failures else 1


def main() -> int:
    arg = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
    where = arg or os.environ.get("PROMPTY_CORPUS")
    if not where or not Path(where).is_dir():
        print("bench_prompty_corpus: skipped: give the path of an export of github.com/microsoft/prompty "
              "(argument or PROMPTY_CORPUS)")
        return 0
    return run(Path(where))


if __name__ == "__main__":
    sys.exit(main())
