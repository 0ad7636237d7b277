"""Prompty's `base:`: a prompty built on another prompty file, as the Prompty runtime loads it.

The runtime (prompty 0.1's `load`, `Prompty.hoist_base_prompty`) loads the base file named
relative to the child and hoists its attributes under the child's: the child's `name`,
`description` and `version` win unless empty; `authors` and `tags` are joined; under `model`
the child's keys win and `configuration`, `parameters` and `response` are merged key by key,
as is `sample`. `inputs`, `outputs` and `template` are the child's own. The child's body is
rendered with the base files' bodies at hand by file name, so it may `{% extends
"base.prompty" %}` or `{% include "base.prompty" %}` them.

A version must not change when another file does, so the base is read when the child is read
and folded in: the merged front matter, and a body in which `extends` and `include` of a base
file are replaced by that file's text (the base's blocks filled with the child's, `super()`
with the base block's own text). The base must be inside the workspace; a chain that comes
back to a file it started from is refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import refs
from .common import FormatError, split_front_matter

MAX_BASE_DEPTH = 16
_MERGED_MODEL_KEYS = ("configuration", "parameters", "response")
_EXTENDS = re.compile(r"""\{%-?\s*extends\s+(['"])([^'"]+)\1\s*-?%\}""")
_INCLUDE = re.compile(r"""\{%-?\s*include\s+(['"])([^'"]+)\1\s*-?%\}""")
_BLOCK_TAG = re.compile(r"\{%-?\s*(?:block\s+(\w+)[^%]*?|endblock(?:\s+\w+)?)\s*-?%\}")
_SUPER = re.compile(r"\{\{-?\s*super\(\)\s*-?\}\}")


def load(front: dict[str, Any], path: Any, root: Any, read_front: Any,
         chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """(the child's front matter with its bases hoisted under it, {file name: body} of every
    base in the chain). `read_front(front, path)` prepares a file's own front matter (its
    `${file:...}` references, resolved next to it)."""
    rel = front.get("base")
    if not isinstance(rel, str) or not rel.strip():
        raise FormatError("'base' must name another prompty file, relative to this one (base: shared.prompty)")
    here = Path(path).resolve() if path is not None else None
    target = refs.locate(rel.strip(), "base", path, root)
    seen = (*chain, here) if here is not None else chain
    if target in seen:
        names = " -> ".join(p.name for p in (*seen, target))
        raise FormatError(f"'base' leads back to a file already in the chain ({names}); remove one of the bases")
    if len(seen) > MAX_BASE_DEPTH:
        raise FormatError(f"'base' chains more than {MAX_BASE_DEPTH} files; flatten some of them")
    text = refs.read_text(target, rel, "base").replace("\r\n", "\n").removeprefix("\ufeff")
    try:
        base_front, base_body = split_front_matter(text)
        base_front = read_front(base_front or {}, target)
        bodies: dict[str, str] = {}
        if "base" in base_front:
            base_front, bodies = load(base_front, target, root, read_front, seen)
    except FormatError as exc:
        if str(exc).startswith("'base' leads back") or str(exc).startswith("'base' chains"):
            raise
        raise FormatError(f"'base' refers to {rel}, which cannot be read ({exc})") from None
    bodies = {target.name: base_body, **bodies}
    return hoist(front, base_front), bodies


def hoist(top: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """`top`'s front matter with `base`'s attributes under it (see the module's docstring)."""
    out = dict(top)
    out.pop("base", None)
    for key in ("name", "description", "version"):
        if not out.get(key) and base.get(key):
            out[key] = base[key]
    for key in ("authors", "tags"):
        if isinstance(base.get(key), list) or isinstance(top.get(key), list):
            joined = [*(base.get(key) or []), *(top.get(key) or [])]
            out[key] = [x for i, x in enumerate(joined) if x not in joined[:i]]
    top_model, base_model = top.get("model"), base.get("model")
    if isinstance(top_model, dict) and isinstance(base_model, dict):
        model = {**base_model, **top_model}
        for key in _MERGED_MODEL_KEYS:
            if isinstance(top_model.get(key), dict) and isinstance(base_model.get(key), dict):
                model[key] = {**base_model[key], **top_model[key]}
        out["model"] = model
    elif top_model is None and base_model is not None:
        out["model"] = base_model
    if isinstance(top.get("sample"), dict) and isinstance(base.get("sample"), dict):
        out["sample"] = {**base["sample"], **top["sample"]}
    elif "sample" not in top and "sample" in base:
        out["sample"] = base["sample"]
    return out


def flatten(body: str, bodies: dict[str, str], depth: int = 0) -> str:
    """The child's Jinja body with `extends` / `include` of a base file replaced by its text."""
    if depth > MAX_BASE_DEPTH:
        raise FormatError("'base' files extend or include each other in a loop; remove the cycle")
    match = _EXTENDS.search(body)
    if match and match.group(2) in bodies:
        parent = flatten(bodies[match.group(2)], bodies, depth + 1)
        body = _fill(parent, _blocks_of(body))
    return _INCLUDE.sub(lambda m: flatten(bodies[m.group(2)], bodies, depth + 1) if m.group(2) in bodies
                        else m.group(0), body)


def _spans(text: str) -> list[tuple[str, int, int, int, int]]:
    """The outermost blocks: (name, tag start, content start, content end, end tag end)."""
    spans, stack = [], []
    for m in _BLOCK_TAG.finditer(text):
        if m.group(1):
            stack.append((m.group(1), m.start(), m.end()))
        elif stack:
            name, start, inner = stack.pop()
            if not stack:
                spans.append((name, start, inner, m.start(), m.end()))
    return spans


def _blocks_of(text: str) -> dict[str, str]:
    """Every block the child defines, at any depth: {name: its text}."""
    found: dict[str, str] = {}
    for name, _, inner, end, _ in _spans(text):
        found.setdefault(name, text[inner:end])
        for sub, body in _blocks_of(text[inner:end]).items():
            found.setdefault(sub, body)
    return found


def _fill(parent: str, child: dict[str, str]) -> str:
    out, pos = [], 0
    for name, _start, inner, end, close in _spans(parent):
        own = parent[inner:end]
        new = _SUPER.sub(lambda _m, own=own: own, child[name]) if name in child else _fill(own, child)
        out += [parent[pos:inner], new, parent[end:close]]
        pos = close
    out.append(parent[pos:])
    return "".join(out)

