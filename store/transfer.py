"""A whole store as one JSON document, and back: for backups, moving machines, and examples.

Export keeps ids, version numbers, branches, labels and the label history exactly, so an
imported store answers `get_prompt(id=42, version=3)` as the original did. Import is one
transaction: a name or id that is taken already stops it, and nothing is written. Each label
the document sets passes the store's label guard (`PromptStore.label_guard`, the engine's
policy: a gated environment's label is refused unless the import was forced with a reason).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlite_utils

from . import audit, secrets
from .db import write
from .errors import InvalidInput
from .handlebars import is_handlebars
from .integrity import import_record
from .models import content_hash
from .prompts import LabelGuard, validate_model_config, validate_name, validate_ref_name
from .template import analyse, declare, normalize

FORMAT = "promstack/1"


def _rows(db: sqlite_utils.Database, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, r, strict=True)) for r in cursor]


def export(db: sqlite_utils.Database) -> dict[str, Any]:
    prompts = []
    for p in _rows(db, "SELECT * FROM prompts ORDER BY id", []):
        versions = []
        for v in _rows(db, "SELECT * FROM versions WHERE prompt_id = ? ORDER BY number", [p["id"]]):
            versions.append({
                "version": v["number"], "branch": v["branch"],
                "template": v["template"] if v["kind"] == "text" else json.loads(v["template"]),
                # a key stored before keys were refused is not exported (store.secrets)
                "model_config": secrets.mask(json.loads(v["model_config"])),
                "variables": json.loads(v["variables"]),
                "sha256": v["sha256"],
                "parent": v["parent"], "merge_parent": v["merge_parent"], "message": v["message"],
                "author": v["author"], "source": v["source"], "created_at": v["created_at"],
            })
        prompts.append({
            "id": p["id"], "name": p["name"], "description": p["description"],
            "created_at": p["created_at"], "created_by": p["created_by"], "archived_at": p["archived_at"],
            "versions": versions,
            "branches": _rows(db, "SELECT name, head, forked_from, created_at, created_by FROM branches "
                                  "WHERE prompt_id = ? ORDER BY name", [p["id"]]),
            "labels": _rows(db, "SELECT name, version, updated_at, updated_by FROM labels "
                                "WHERE prompt_id = ? ORDER BY name", [p["id"]]),
            "label_history": _rows(db, "SELECT label, from_version, to_version, actor, reason, at "
                                       "FROM label_history WHERE prompt_id = ? ORDER BY id", [p["id"]]),
        })
    return {"format": FORMAT, "prompts": prompts}


def _need(item: dict[str, Any], key: str, where: str) -> Any:
    if key not in item:
        raise InvalidInput(f"{where} has no {key!r}; is this a file written by 'promstack export'?")
    return item[key]


def _variables(version: dict[str, Any], used: list[str], config: dict[str, Any]) -> list[dict[str, Any]]:
    # A version's variables include those of the prompts it includes, which the template alone
    # does not show (and which may come later in the document): keep the exported list.
    exported = version.get("variables")
    if isinstance(exported, list) and all(isinstance(x, dict) and "name" in x for x in exported):
        return exported
    return declare(used, config)


def _check_prompt(p: Any) -> None:
    """The shape of one exported prompt, checked before any of it is written: a hand-edited or
    truncated file gets a sentence naming the place, never a KeyError or a store whose
    branches and labels point at versions that do not exist."""
    if not isinstance(p, dict):
        raise InvalidInput("each entry of 'prompts' must be an object; is this a file written by 'promstack export'?")
    name = validate_name(_need(p, "name", "a prompt"))
    where = f"prompt {name!r}"
    pid = p.get("id")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int) or pid < 1):
        raise InvalidInput(f"{where} has id {pid!r}; an id is a positive whole number")
    versions = _need(p, "versions", where)
    if not isinstance(versions, list) or not versions or not all(isinstance(v, dict) for v in versions):
        raise InvalidInput(f"{where} needs 'versions', a non-empty list of objects")
    numbers = [_need(v, "version", where) for v in versions]
    if numbers != list(range(1, len(numbers) + 1)):
        raise InvalidInput(f"{where} has versions numbered {numbers[:10]}...; they must run 1, 2, 3... in order")
    known = set(numbers)

    def version_ref(value: Any, what: str, *, optional: bool = True) -> None:
        if (value is None and optional) or (
                isinstance(value, int) and not isinstance(value, bool) and value in known):
            return
        raise InvalidInput(f"{where}: {what} points at version {value!r}, which the file does not hold")

    for v in versions:
        here = f"{where} version {v['version']}"
        version_ref(v.get("parent"), f"the parent of version {v['version']}")
        version_ref(v.get("merge_parent"), f"the merge parent of version {v['version']}")
        validate_model_config(v.get("model_config"))
        if not isinstance(_need(v, "created_at", here), str):
            raise InvalidInput(f"{here}: 'created_at' must be a time as text")
    for key, fields in (("branches", ("name", "head", "created_at", "created_by")),
                        ("labels", ("name", "version", "updated_at", "updated_by")),
                        ("label_history", ("label", "actor", "at"))):
        items = p.get(key, [] if key != "branches" else None)
        if items is None:
            _need(p, key, where)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InvalidInput(f"{where}: {key!r} must be a list of objects")
        for item in items:
            for field in fields:
                _need(item, field, f"{where}, an entry of {key!r},")
    for key, field in (("branches", "name"), ("labels", "name")):
        names = [item[field] for item in p.get(key, [])]
        if len(names) != len(set(map(str, names))):
            raise InvalidInput(f"{where} lists a {key[:-1]} twice in {key!r}")
    branches = p["branches"]
    if "main" not in {b["name"] for b in branches}:
        raise InvalidInput(f"{where} has no branch 'main'; every prompt has one")
    for b in branches:
        validate_ref_name(b["name"], "branch")
        version_ref(b["head"], f"branch {b['name']!r}", optional=False)
        version_ref(b.get("forked_from"), f"the fork point of branch {b['name']!r}")
    for label in p.get("labels", []):
        validate_ref_name(label["name"], "label")
        version_ref(label["version"], f"label {label['name']!r}", optional=False)
    for move in p.get("label_history", []):
        version_ref(move.get("from_version"), f"a move of label {move['label']!r}")
        version_ref(move.get("to_version"), f"a move of label {move['label']!r}")


def import_(db: sqlite_utils.Database, document: Any, *, actor: str,
            label_guard: LabelGuard | None = None,
            config_check: Callable[[dict[str, Any]], None] | None = None) -> dict[str, int]:
    """Add every prompt of an exported document; returns counts. All or nothing: a label the
    guard refuses (it raises) stops the import too, and so does a model config the engine's
    `config_check` refuses (PromptStore.config_check)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InvalidInput(f"this is not a PromStack export (expected \"format\": \"{FORMAT}\")")
    prompts = _need(document, "prompts", "the document")
    if not isinstance(prompts, list):
        raise InvalidInput("'prompts' must be a list")
    for p in prompts:  # the whole document's shape first: a damaged file is named before any rule applies
        _check_prompt(p)
    if config_check is not None:
        for p in prompts:
            for v in p["versions"]:
                if v.get("model_config"):
                    config_check(v["model_config"])
    counts = {"prompts": 0, "versions": 0, "labels": 0}
    imported: list[int] = []
    with write(db):
        for p in prompts:
            name = p["name"]
            where = f"prompt {name!r}"
            taken = db.execute("SELECT id, name FROM prompts WHERE name = ? OR id = ?",
                               [name, p.get("id")]).fetchone()
            if taken:
                raise InvalidInput(
                    f"{where} (id {p.get('id')}) clashes with prompt {taken[1]!r} (id {taken[0]}) in this "
                    "store; import into an empty store, or delete the clash first; nothing was imported"
                )
            cursor = db.execute(
                "INSERT INTO prompts (id, name, description, created_at, created_by, archived_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [p.get("id"), name, p.get("description"), _need(p, "created_at", where),
                 p.get("created_by") or actor, p.get("archived_at")],
            )
            pid = cursor.lastrowid
            for v in _need(p, "versions", where):
                number = _need(v, "version", where)
                config = v.get("model_config") or {}
                tmpl = normalize(_need(v, "template", f"{where} version {number}"),
                                 allow_empty=is_handlebars(config))
                used, includes = analyse(tmpl, config)
                sha = content_hash(tmpl, config)
                db.execute(
                    "INSERT INTO versions (prompt_id, number, branch, kind, template, model_config, variables, "
                    "sha256, parent, merge_parent, message, author, source, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [pid, number, v.get("branch", "main"), tmpl.kind, tmpl.text,
                     json.dumps(config, ensure_ascii=False, sort_keys=True),
                     json.dumps(_variables(v, used, config), ensure_ascii=False), sha, v.get("parent"),
                     v.get("merge_parent"), v.get("message"), v.get("author") or actor,
                     v.get("source", "import"), _need(v, "created_at", where)],
                )
                for inc_name, selector in includes:
                    db.execute("INSERT OR IGNORE INTO dependencies VALUES (?, ?, ?, ?)",
                               [pid, number, inc_name, selector])
                counts["versions"] += 1
            for b in _need(p, "branches", where):
                validate_ref_name(b["name"], "branch")
                db.execute("INSERT INTO branches (prompt_id, name, head, forked_from, created_at, created_by) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           [pid, b["name"], b["head"], b.get("forked_from"), b["created_at"], b["created_by"]])
            for label in p.get("labels", []):
                if label_guard is not None:
                    label_guard({"id": pid, "name": name}, label["name"], None, label["version"], "import")
                db.execute("INSERT INTO labels (prompt_id, name, version, updated_at, updated_by) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [pid, label["name"], label["version"], label["updated_at"], label["updated_by"]])
                counts["labels"] += 1
            for move in p.get("label_history", []):
                db.execute("INSERT INTO label_history (prompt_id, label, from_version, to_version, actor, "
                           "reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [pid, move["label"], move.get("from_version"), move.get("to_version"),
                            move["actor"], move.get("reason"), move["at"]])
            counts["prompts"] += 1
            imported.append(pid)
        # What came in, as the chain will remember it: `audit verify` holds these versions,
        # label moves and labels up against it as it does for those saved one by one.
        audit.record(db, actor, "import", detail={**counts, "prompts": import_record(db, imported)})
    return counts
