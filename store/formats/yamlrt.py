"""Round-trip edits of YAML a person wrote: change some values, keep every other byte.

A write-back must not reformat what PromStack does not own (comments, key order, quotes, flow
lists, wrapped lines, blank lines). `update` therefore splices each changed scalar into the
text in the style it had (plain, quoted, `|` block), where its bytes were; only what a splice
cannot express (a new or removed key, a list whose length changed) goes through ruamel.yaml's
round-trip loader and dumper, which keeps comments, order and quotes but may re-indent. The
result is read back and compared with what was asked for, so a splice that went wrong is never
written.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

from .common import FormatError, dump_yaml

Path = tuple[str | int, ...]
_DELETE = object()
_SCALARS = (str, int, float, bool, type(None))
_PRINTABLE = re.compile(r"^[\t\n\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")


def update(text: str, changes: dict[Path, Any], deletes: Iterable[Path] = ()) -> str:
    """`text` with each path in `changes` set to its value and each path in `deletes` removed.
    A path is the keys and list indexes from the top mapping: ("messages", 1, "content")."""
    changes = dict(changes)
    for path in deletes:
        changes[path] = _DELETE
    if not changes:
        return text
    expected = _apply_to_data(yaml.safe_load(text) or {}, changes)
    splices, rest = [], {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None
    for path, value in changes.items():
        splice = _splice_for(text, root, path, value) if root is not None else None
        if splice is None:
            rest[path] = value
        else:
            splices.append(splice)
    out = text
    for start, end, new in sorted(splices, reverse=True):
        out = out[:start] + new + out[end:]
    if rest:
        out = _ruamel(out, rest)
    if _load(out) != expected:
        out = _ruamel(text, changes)  # a splice went wrong: let the dumper write every change
        if _load(out) != expected:
            raise FormatError("the file could not be rewritten to hold the new version; it was left as it is")
    return out


def update_to(text: str, data: dict[str, Any]) -> str:
    """`text` rewritten to hold `data`: only the values that differ from the text's are changed
    (`update`), each at the deepest path where they differ."""
    changes: dict[Path, Any] = {}
    deletes: list[Path] = []
    _diff(yaml.safe_load(text) or {}, data, (), changes, deletes)
    return update(text, changes, deletes)


def _diff(old: Any, new: Any, path: Path, changes: dict[Path, Any], deletes: list[Path]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        deletes.extend((*path, k) for k in old if k not in new)
        for k, v in new.items():
            if k in old:
                _diff(old[k], v, (*path, k), changes, deletes)
            else:
                changes[(*path, k)] = v
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, (*path, i), changes, deletes)
    elif old != new or type(old) is not type(new):
        changes[path] = new


def _load(text: str) -> Any:
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return None


def _apply_to_data(data: Any, changes: dict[Path, Any]) -> Any:
    for path, value in changes.items():
        target = data
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
        if value is _DELETE:
            if isinstance(target, dict):
                target.pop(path[-1], None)
        elif isinstance(target, list) and path[-1] == len(target):
            target.append(value)
        else:
            target[path[-1]] = value
    return data


# ---- splicing one scalar ---------------------------------------------------------------------

def _find(root: yaml.Node, path: Path) -> tuple[yaml.Node | None, int]:
    """The node at `path` and the column its block content is indented to."""
    node, indent = root, 0
    for key in path:
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    node, indent = v, k.start_mark.column + 2
                    break
            else:
                return None, 0
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
            indent = node.start_mark.column + 2
        else:
            return None, 0
    return node, indent


def _splice_for(text: str, root: yaml.Node, path: Path, value: Any) -> tuple[int, int, str] | None:
    parent, _ = _find(root, path[:-1])
    if not isinstance(parent, yaml.MappingNode) or parent.flow_style or not isinstance(path[-1], str):
        parent = None
    if value is _DELETE:
        return _remove_key(text, parent, path[-1]) if parent is not None else None
    node, indent = _find(root, path)
    if node is None and parent is not None and parent.value:
        return _add_key(text, parent, path[-1], value)
    if not isinstance(value, _SCALARS):
        return _block_for(text, node, value)
    if not isinstance(node, yaml.ScalarNode):
        return None
    start, end = node.start_mark.index, node.end_mark.index
    old = text[start:end]
    block = node.style in ("|", ">")
    tail = ""
    if block:
        if old.startswith(("|+", ">+")):
            tail = ""
        else:
            body = old.rstrip("\n ")
            tail = old[len(body):]
            tail = tail[tail.find("\n") + 1:] if "\n" in tail else ""
        lines = [ln for ln in old.split("\n")[1:] if ln.strip()]
        if lines:
            indent = len(lines[0]) - len(lines[0].lstrip(" "))
    else:
        line_end = text.find("\n", end)
        after = text[end: len(text) if line_end < 0 else line_end]
        if after.strip() and isinstance(value, str) and "\n" in value:
            return None  # a comment after a one-line value: a block cannot start there
    new = _scalar(value, node.style, indent)
    if new is None:
        return None
    if block:
        new = new if new.endswith("\n") else new + "\n"
        return start, end, new + tail
    return start, end, new.removesuffix("\n")


def _block_for(text: str, node: yaml.Node | None, value: Any) -> tuple[int, int, str] | None:
    """A block list or mapping written afresh where the old one was, at its indentation."""
    if not isinstance(node, yaml.SequenceNode | yaml.MappingNode) or node.flow_style or not value:
        return None
    if not isinstance(value, list if isinstance(node, yaml.SequenceNode) else dict):
        return None
    start, end = node.start_mark.index, node.end_mark.index
    line_start = text.rfind("\n", 0, start) + 1
    if text[line_start:start].strip(" -"):
        return None  # shares its line with its key: let the dumper decide
    pad = " " * node.start_mark.column
    lines = dump_yaml(value).rstrip("\n").split("\n")
    new = "\n".join([lines[0], *((pad + ln) if ln else "" for ln in lines[1:])]) + "\n"
    if text[start:end].endswith("\n"):
        tail = text[start:end]
        body = tail.rstrip("\n ")
        rest = tail[len(body):]
        return start, end, new + rest[rest.find("\n") + 1:]
    return start, end, new.removesuffix("\n")


def _line_end(text: str, index: int) -> int:
    """The index after the newline that ends the line `index` is on (or the text's end)."""
    if index > 0 and text[index - 1] == "\n":
        return index
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def _remove_key(text: str, parent: yaml.MappingNode, key: str) -> tuple[int, int, str] | None:
    for k, v in parent.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            start = text.rfind("\n", 0, k.start_mark.index) + 1
            if text[start:k.start_mark.index].strip():
                return None  # not the first thing on its line
            return start, _line_end(text, v.end_mark.index), ""
    return None


def _add_key(text: str, parent: yaml.MappingNode, key: str, value: Any) -> tuple[int, int, str] | None:
    column = parent.value[0][0].start_mark.column
    at = _line_end(text, parent.value[-1][1].end_mark.index)
    if at == len(text) and not text.endswith("\n"):
        return None
    dumped = yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, default_flow_style=False,
                            width=4096)
    pad = " " * column
    return at, at, "".join(pad + ln + "\n" if ln else "\n" for ln in dumped.rstrip("\n").split("\n"))


def _scalar(value: Any, style: str | None, indent: int) -> str | None:
    """`value` written as YAML in (or near) the style the old value had."""
    if not isinstance(value, str):
        return yaml.safe_dump(value).removesuffix("\n...\n").strip()
    if not _PRINTABLE.match(value):
        return json.dumps(value, ensure_ascii=False)
    if "\n" in value:
        content = value.rstrip("\n")
        if not content or content[0] in " \t" or any(ln != ln.rstrip(" \t") and not ln.strip() for ln in
                                                       content.split("\n")):
            return json.dumps(value, ensure_ascii=False)
        trailing = len(value) - len(content)
        chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
        pad = " " * indent
        lines = "".join((pad + ln if ln else "") + "\n" for ln in content.split("\n"))
        return f"|{chomp}\n{lines}" + "\n" * (trailing - 1 if trailing > 1 else 0)
    if style == '"':
        return json.dumps(value, ensure_ascii=False)
    if style != "'" and value and value == value.strip() and _plain_ok(value):
        return value
    return "'" + value.replace("'", "''") + "'"


def _plain_ok(value: str) -> bool:
    try:
        return yaml.safe_load("k: " + value) == {"k": value} and "#" not in value and ": " not in value
    except yaml.YAMLError:
        return False


# ---- ruamel.yaml for what a splice cannot do -------------------------------------------------

def round_trip_yaml(sequence: int = 4, offset: int = 2):  # noqa: ANN201 - a ruamel YAML
    """ruamel.yaml in round-trip mode, as every prompt file writer uses it: comments, key order,
    quotes and flow style are kept, and long lines are not folded."""
    from ruamel.yaml import YAML

    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=sequence, offset=offset)
    return rt


def _ruamel(text: str, changes: dict[Path, Any]) -> str:
    rt = round_trip_yaml(*_indents(text))
    data = rt.load(text)
    if data is None:
        from ruamel.yaml.comments import CommentedMap

        data = CommentedMap()
    _apply_to_data(data, changes)
    out = io.StringIO()
    rt.dump(data, out)
    return out.getvalue()


def _indents(text: str) -> tuple[int, int]:
    """(sequence indent, dash offset) as the file writes its block lists."""
    for match in re.finditer(r"^( *)[\w\"'-][^\n:]*:[ \t]*\n( *)- ", text, re.M):
        key, dash = len(match.group(1)), len(match.group(2))
        offset = dash - key
        return offset + 2, offset
    return 2, 0
