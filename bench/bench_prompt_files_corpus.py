"""Prompt files as their home tools' own repositories keep them: how many PromStack loads, renders
and writes back unchanged.

    python -m bench.bench_prompt_files_corpus --github DIR --vscode DIR

`--github` (or PROMSTACK_CORPUS_GITHUB): a folder whose *.yml / *.yaml files are GitHub Models
prompt files (an export of github/gh-models' examples/, or any repository's *.prompt.yml).
`--vscode` (or PROMSTACK_CORPUS_VSCODE): a folder of *.prompt.md files (an export of
github/awesome-copilot's prompts/). Neither is shipped here; without them the module says so and
exits 0.

For each file: parse (the watcher's reader), store (normalize + variable analysis), render with
every variable set, write back the same version (must be the file byte for byte), and for a
.prompt.yml its testData + evaluators as a suite. Failures are listed with their sentence.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path


def _files(folder: Path, kind: str) -> list[Path]:
    if kind == "github":
        return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".yml", ".yaml"))
    return sorted(p for p in folder.rglob("*.prompt.md") if p.is_file())


def check(path: Path, kind: str) -> tuple[str, str | None]:
    """(the furthest step reached, the failure's sentence or None)."""
    from store import formats
    from store.template import analyse, normalize, render

    fmt = "github" if kind == "github" else "prompt.md"
    text = path.read_text(encoding="utf-8")
    try:
        parsed = formats.parse(fmt, text)
    except Exception as exc:
        return "refused", str(exc)
    try:
        template = normalize(parsed.template)
        used, _ = analyse(template)
    except Exception as exc:
        return "loaded", f"not stored: {exc}"
    try:
        render(template, {name: "x" for name in used}, [], None, label=path.name)
    except Exception as exc:
        return "stored", f"does not render: {exc}"
    if kind == "github" and parsed.test_data:
        try:
            from promstack.evals.prompt_yml import cases_from_prompt_yml

            cases_from_prompt_yml(parsed.test_data, path.name)
        except Exception as exc:
            return "rendered", f"test data is not a suite: {exc}"
    try:
        again = formats.render(fmt, parsed.template, parsed.model_config or {}, description=parsed.description,
                               existing=text)
    except Exception as exc:
        return "rendered", f"write-back failed: {exc}"
    text = text.replace("\r\n", "\n").removeprefix("\ufeff")
    if again != text:
        return "rendered", "write-back of the unchanged version changes the file's bytes"
    return _edit(fmt, parsed, text)


def _edit(fmt: str, parsed: object, text: str) -> tuple[str, str | None]:
    """A change made through PromStack: the template edited; only its bytes may change."""
    import difflib

    from store import formats

    template = parsed.template
    if isinstance(template, str):
        edited = template + "\nEdited through PromStack.\n"
    else:
        edited = [dict(m) for m in template]
        edited[-1]["content"] += " Edited through PromStack."
    try:
        again = formats.render(fmt, edited, parsed.model_config or {}, existing=text)
        back = formats.parse(fmt, again)
    except Exception as exc:
        return "round-trip", f"an edit is not written back: {exc}"
    if back.template != edited and _rendered(back.template) != _rendered(edited):
        return "round-trip", "an edit written back reads as something else"
    if isinstance(template, str):
        ok = again == text + "\nEdited through PromStack.\n"
    else:
        removed = [ln[1:] for ln in difflib.unified_diff(text.splitlines(), again.splitlines(), lineterm="", n=0)
                   if ln.startswith("-") and not ln.startswith("---")]
        ok = all(ln.strip() in template[-1]["content"] or ln.strip().startswith("content:") for ln in removed)
    return ("edited", None) if ok else ("round-trip", "an edit of the template changes other bytes too")


def _rendered(template: object) -> object:
    """What a template sends, every variable set to its own name (a raw block and a literal run
    that send the same bytes are the same template)."""
    from store.template import analyse, normalize, render

    stored = normalize(template)
    used, _ = analyse(stored)
    return render(stored, {name: f"<{name}>" for name in used}, [], None, label="p")


def run(folder: Path, kind: str) -> dict[str, int]:
    files = _files(folder, kind)
    steps: Counter[str] = Counter()
    failures: list[tuple[str, str]] = []
    for path in files:
        step, error = check(path, kind)
        steps[step] += 1
        if error:
            failures.append((str(path.relative_to(folder)), error))
    reached = {
        "files": len(files),
        "loaded": len(files) - steps["refused"],
        "rendered": steps["rendered"] + steps["round-trip"] + steps["edited"],
        "round-trip": steps["round-trip"] + steps["edited"],
        "edited": steps["edited"],
    }
    label = "GitHub Models .prompt.yml" if kind == "github" else "VS Code .prompt.md"
    print(f"{label} in {folder}: {reached['files']} files, {reached['loaded']} load, {reached['rendered']} "
          f"render, {reached['round-trip']} write back byte for byte, {reached['edited']} take an edit of "
          "the template changing only its bytes")
    for name, error in failures:
        print(f"  {name}: {error.splitlines()[0][:200]}")
    return reached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_prompt_files_corpus", description=__doc__.splitlines()[0])
    parser.add_argument("--github", default=os.environ.get("PROMSTACK_CORPUS_GITHUB"))
    parser.add_argument("--vscode", default=os.environ.get("PROMSTACK_CORPUS_VSCODE"))
    parser.add_argument("--quick", action="store_true", help="accepted for python -m bench; the corpus is small")
    args = parser.parse_args(argv)
    ran = False
    for kind, folder in (("github", args.github), ("vscode", args.vscode)):
        if not folder:
            print(f"prompt-file corpus: no {kind} folder given (--{kind} or PROMSTACK_CORPUS_"
                  f"{kind.upper()}); skipped")
            continue
        if not Path(folder).is_dir():
            print(f"prompt-file corpus: {folder} is not a folder; skipped")
            continue
        run(Path(folder), kind)
        ran = True
    if not ran:
        print("prompt-file corpus: nothing to measure (export the repositories' prompt files first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
