"""Prompts, versions, branches and labels: the git-like model of DESIGN.md.

A version is immutable and numbered per prompt (1, 2, 3... across all branches). Branches and
labels are movable pointers; every label move is kept. Each mutation is one write transaction
together with its audit row, so a crash leaves either all of a change or none of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import sqlite_utils

from . import audit, checks, secrets
from .bounds import MAX_CONFIG_BYTES, check_json
from .clock import now
from .db import write
from .diff import line_diff as unified_diff
from .diff import merge3, word_diff
from .errors import InvalidInput, MergeConflict, NotFound, Step
from .handlebars import is_handlebars
from .models import Branch, Diff, LabelMove, Prompt, PromptVersion, content_hash
from .refs import SQLITE_MAX_INT, prompt_ref
from .template import Template, analyse, declare, normalize, optional_names, render, split_reference

# Names are opaque to the API, but validated: they appear in listings, file paths and MCP
# prompt names. Unicode letters are fine (고객지원/환불); '/' makes folders; all digits would
# read as an id.
_SEGMENT = r"[\w][\w.-]*"
NAME_RE = re.compile(rf"^(?!\d+\Z){_SEGMENT}(/{_SEGMENT})*\Z")
REF_RE = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})*\Z")
MAX_NAME = 200
MAIN = "main"
LATEST = "latest"
LIVE_LABELS = ("production", "staging")
MAX_INCLUDES_PER_RENDER = 64

PromptRef = int | str
# The engine's policy on label moves (promstack.deploy installs one through `Client`): called
# inside the move's transaction with (prompt row, label, from_version, to_version, how), it
# raises to refuse. `how` is 'set', 'remove' or 'import'. The store knows no environments.
LabelGuard = Callable[[dict[str, Any], str, "int | None", "int | None", str], None]


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput("a prompt name must be a non-empty string such as 'support/refund'")
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise InvalidInput(
            f"{name!r} is not a valid prompt name: use letters, digits, '_', '-', '.' in "
            "segments joined by '/' (e.g. 'support/refund'), not only digits, at most 200 characters"
        )
    return name


def validate_ref_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not REF_RE.match(name) or len(name) > 100:
        raise InvalidInput(
            f"{name!r} is not a valid {what} name: use letters, digits, '_', '-', '.' and '/' "
            "with no spaces (e.g. 'production' or 'experiment/shorter')"
        )
    return name


def validate_model_config(model_config: Any) -> dict[str, Any]:
    if model_config is None:
        return {}
    if not isinstance(model_config, dict):
        raise InvalidInput("model_config must be an object such as {\"model\": \"gpt-4o\", \"temperature\": 0.2}")
    check_json(model_config, "model_config", MAX_CONFIG_BYTES)  # before json.dumps: deep or huge
    try:
        json.dumps(model_config, allow_nan=False)  # NaN and Infinity are not JSON
    except (TypeError, ValueError):
        raise InvalidInput("model_config must contain only JSON values (text, numbers, lists, objects)") from None
    temperature = model_config.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise InvalidInput("model_config.temperature must be a number from 0 to 2")
    max_tokens = model_config.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise InvalidInput("model_config.max_tokens must be a positive whole number")
    model = model_config.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InvalidInput("model_config.model must be a model name such as 'gpt-4o-mini'")
    # Every way in (SDK, CLI, MCP, REST, import, the watcher's prompt files) passes here: a
    # config is versioned, exported and shown to every reader, so it never holds a key.
    secrets.refuse(model_config)
    key_env = model_config.get("api_key_env")
    if key_env is not None and (not isinstance(key_env, str) or not secrets.ENV_NAME.match(key_env)):
        raise InvalidInput(
            "model_config.api_key_env names an environment variable (such as 'OPENAI_API_KEY'), "
            "not a key: letters, digits and '_'"
        )
    return model_config


_VERSION_COLUMNS = (
    "prompt_id, number, branch, kind, template, model_config, variables, sha256, parent, "
    "merge_parent, message, author, source, created_at"
)


class PromptStore:
    """The version model over one database. `actor` is who the writes are attributed to."""

    def __init__(self, db: sqlite_utils.Database, *, actor: str) -> None:
        self.db = db
        self.actor = actor
        self.label_guard: LabelGuard | None = None
        # The engine's check of a model config against the server's config (which key variables
        # it may name); `Client` installs it. The store's own checks run with or without it.
        self.config_check: Callable[[dict[str, Any]], None] | None = None

    # ---- resolving names --------------------------------------------------------------

    def prompt_row(self, prompt: PromptRef, *, archived_ok: bool = False) -> dict[str, Any]:
        """The prompts row `prompt` (an id or a name) names: {"id", "name", "description",
        "created_at", "created_by", "archived_at"}. NotFound, with the step that helps, when no
        prompt has that id or name, or when it is archived (unless `archived_ok`)."""
        if isinstance(prompt, bool) or not isinstance(prompt, int | str) or prompt == "":
            raise InvalidInput("name the prompt by its id (42) or its name ('support/refund')")
        prompt = prompt_ref(prompt)
        column = "id" if isinstance(prompt, int) else "name"
        row = None if column == "id" and abs(prompt) > SQLITE_MAX_INT else self.db.execute(
            f"SELECT id, name, description, created_at, created_by, archived_at FROM prompts WHERE {column} = ?",
            [prompt],
        ).fetchone()
        if row is None:
            hint = self._suggest(prompt) if isinstance(prompt, str) else ""
            raise NotFound(f"there is no prompt {prompt!r}{hint}; ", Step("list_prompts"), " shows the ones that exist")
        data = dict(zip(("id", "name", "description", "created_at", "created_by", "archived_at"), row, strict=True))
        if data["archived_at"] and not archived_ok:
            raise NotFound(
                f"prompt {data['name']!r} was deleted (archived at {data['archived_at']}); ",
                Step("restore_prompt", prompt=data["name"]), " brings it back",
            )
        return data

    def _suggest(self, name: str) -> str:
        import difflib

        names = [r[0] for r in self.db.execute("SELECT name FROM prompts")]
        close = difflib.get_close_matches(name, names, n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""

    def prompt_id(self, prompt: PromptRef) -> int:
        return self.prompt_row(prompt, archived_ok=True)["id"]

    def _branch_head(self, prompt_id: int, name: str, branch: str) -> int:
        row = self.db.execute(
            "SELECT head FROM branches WHERE prompt_id = ? AND name = ?", [prompt_id, branch]
        ).fetchone()
        if row is None:
            raise NotFound(f"prompt {name!r} has no branch {branch!r}; ",
                           Step("create_branch", prompt=name, branch=branch), " makes one")
        return row[0]

    def _version_row(self, prompt_id: int, number: int) -> tuple | None:
        return self.db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE prompt_id = ? AND number = ?",
            [prompt_id, number],
        ).fetchone()

    def _newest(self, prompt_id: int) -> int:
        return self.db.execute(
            "SELECT coalesce(max(number), 0) FROM versions WHERE prompt_id = ?", [prompt_id]
        ).fetchone()[0]

    def _load(self, name: str, row: tuple, *, created: bool = True) -> PromptVersion:
        (prompt_id, number, branch, kind, template, model_config, variables, sha, parent,
         merge_parent, message, author, source, created_at) = row
        return PromptVersion(
            prompt_id=prompt_id,
            name=name,
            version=number,
            branch=branch,
            kind=kind,
            template=template if kind == "text" else json.loads(template),
            # A key saved before keys were refused is never served (nor sent: the gateway
            # refuses a config with a secret field).
            model_config=secrets.mask(json.loads(model_config)),
            variables=json.loads(variables),
            sha256=sha,
            parent=parent,
            merge_parent=merge_parent,
            message=message,
            author=author,
            source=source,
            created_at=created_at,
            created=created,
            _renderer=self.render,
        )

    def _version(self, prompt: dict[str, Any], number: Any) -> PromptVersion:
        if isinstance(number, str) and number.isascii() and number.isdigit():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InvalidInput(f"a version is a whole number from 1; got {number!r}")
        row = self._version_row(prompt["id"], number) if number <= SQLITE_MAX_INT else None
        if row is None:
            newest = self._newest(prompt["id"])
            raise NotFound(
                f"prompt {prompt['name']!r} has no version {number}; its newest is {newest}"
            )
        return self._load(prompt["name"], row)

    # ---- reading ----------------------------------------------------------------------

    def get(
        self,
        prompt: PromptRef | None = None,
        *,
        id: int | None = None,
        version: int | None = None,
        label: str | None = None,
        branch: str | None = None,
    ) -> PromptVersion:
        if prompt is None and id is None:
            raise InvalidInput("say which prompt: give its name or its id")
        if prompt is not None and id is not None and self.prompt_id(prompt) != self.prompt_id(id):
            raise InvalidInput(f"prompt {prompt!r} and id {id} name different prompts; give one of them")
        selectors = [s for s, v in (("version", version), ("label", label), ("branch", branch)) if v is not None]
        if len(selectors) > 1:
            raise InvalidInput(f"give one of version, label or branch, not {' and '.join(selectors)}")
        row = self.prompt_row(id if id is not None else prompt)
        if version is not None:
            return self._version(row, version)
        if label is not None and label != LATEST:
            return self._version(row, self.label_target(row, label))
        return self._version(row, self._branch_head(row["id"], row["name"], branch or MAIN))

    def label_target(self, prompt: dict[str, Any], label: str) -> int:
        """The version number `label` points at for `prompt` (a row from `prompt_row`);
        NotFound, listing the prompt's labels, when it has no such label."""
        found = self.db.execute(
            "SELECT version FROM labels WHERE prompt_id = ? AND name = ?", [prompt["id"], label]
        ).fetchone()
        if found is None:
            known = [r[0] for r in self.db.execute(
                "SELECT name FROM labels WHERE prompt_id = ? ORDER BY name", [prompt["id"]]
            )]
            listing = ", ".join([LATEST, *known])
            raise NotFound(
                f"prompt {prompt['name']!r} has no label {label!r}; its labels are: {listing}"
            )
        return found[0]

    def list_prompts(self, *, include_archived: bool = False) -> list[Prompt]:
        where = "" if include_archived else "WHERE p.archived_at IS NULL"
        rows = self.db.execute(
            f"""SELECT p.id, p.name, p.description, p.created_at, p.created_by, p.archived_at,
                       (SELECT head FROM branches b WHERE b.prompt_id = p.id AND b.name = 'main'),
                       (SELECT count(*) FROM versions v WHERE v.prompt_id = p.id)
                FROM prompts p {where} ORDER BY p.name"""
        ).fetchall()
        labels: dict[int, dict[str, int]] = {}
        for pid, name, ver in self.db.execute("SELECT prompt_id, name, version FROM labels ORDER BY name"):
            labels.setdefault(pid, {})[name] = ver
        branches: dict[int, list[str]] = {}
        for pid, name in self.db.execute("SELECT prompt_id, name FROM branches ORDER BY name"):
            branches.setdefault(pid, []).append(name)
        return [
            Prompt(
                id=r[0], name=r[1], description=r[2], created_at=r[3], created_by=r[4],
                archived=r[5] is not None, head=r[6], versions=r[7],
                labels={LATEST: r[6], **labels.get(r[0], {})} if r[6] else labels.get(r[0], {}),
                branches=branches.get(r[0], []),
            )
            for r in rows
        ]

    def history(
        self, prompt: PromptRef, *, branch: str | None = None, limit: int | None = None
    ) -> list[PromptVersion]:
        """Newest first. With a branch, its line of ancestry (as `git log` shows a branch)."""
        row = self.prompt_row(prompt, archived_ok=True)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInput("limit must be a positive whole number")
        cap = min(limit, SQLITE_MAX_INT) if limit is not None else -1
        if branch is None:
            rows = self.db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE prompt_id = ? ORDER BY number DESC LIMIT ?",
                [row["id"], cap],
            ).fetchall()
        else:
            head = self._branch_head(row["id"], row["name"], branch)
            rows = self.db.execute(
                f"""WITH RECURSIVE chain(n, depth) AS (
                        SELECT ?, 0
                        UNION ALL
                        SELECT v.parent, chain.depth + 1 FROM chain
                        JOIN versions v ON v.prompt_id = ? AND v.number = chain.n
                        WHERE v.parent IS NOT NULL
                        LIMIT ?
                    )
                    SELECT {", ".join("v." + c.strip() for c in _VERSION_COLUMNS.split(","))}
                    FROM chain JOIN versions v ON v.prompt_id = ? AND v.number = chain.n
                    ORDER BY chain.depth""",
                [head, row["id"], cap, row["id"]],
            ).fetchall()
        return [self._load(row["name"], r) for r in rows]

    def list_branches(self, prompt: PromptRef) -> list[Branch]:
        row = self.prompt_row(prompt, archived_ok=True)
        return [
            Branch(row["id"], *r)
            for r in self.db.execute(
                "SELECT name, head, forked_from, created_at, created_by FROM branches "
                "WHERE prompt_id = ? ORDER BY name = 'main' DESC, name",
                [row["id"]],
            )
        ]

    def labels(self, prompt: PromptRef) -> dict[str, int]:
        row = self.prompt_row(prompt, archived_ok=True)
        result = {LATEST: self._branch_head(row["id"], row["name"], MAIN)}
        result.update(
            dict(self.db.execute("SELECT name, version FROM labels WHERE prompt_id = ? ORDER BY name", [row["id"]]))
        )
        return result

    def label_history(self, prompt: PromptRef, label: str | None = None) -> list[LabelMove]:
        """Every move of the prompt's labels (or of one), newest first."""
        row = self.prompt_row(prompt, archived_ok=True)
        where, params = "prompt_id = ?", [row["id"]]
        if label is not None:
            where += " AND label = ?"
            params.append(label)
        return [
            LabelMove(row["id"], *r)
            for r in self.db.execute(
                f"SELECT label, from_version, to_version, actor, reason, at FROM label_history "
                f"WHERE {where} ORDER BY id DESC",
                params,
            )
        ]

    def label_at(self, prompt: PromptRef, label: str, at: str) -> int | None:
        """The version `label` pointed at, at time `at` (ISO 8601); None if it pointed nowhere."""
        row = self.prompt_row(prompt, archived_ok=True)
        found = self.db.execute(
            "SELECT to_version FROM label_history WHERE prompt_id = ? AND label = ? AND at <= ? "
            "ORDER BY id DESC LIMIT 1",
            [row["id"], label, _normalise_time(at)],
        ).fetchone()
        return found[0] if found else None

    def dependents(self, prompt: PromptRef) -> list[dict[str, Any]]:
        """Which prompt versions include this prompt."""
        row = self.prompt_row(prompt, archived_ok=True)
        return [
            {"name": name, "version": version, "selector": selector}
            for name, version, selector in self.db.execute(
                "SELECT p.name, d.version, d.selector FROM dependencies d JOIN prompts p ON p.id = d.prompt_id "
                "WHERE d.depends_on = ? ORDER BY p.name, d.version",
                [row["name"]],
            )
        ]

    # ---- rendering --------------------------------------------------------------------

    def _resolver(self):  # noqa: ANN202
        count = 0

        def resolve(name: str, selector: str) -> str:
            nonlocal count
            count += 1
            if count > MAX_INCLUDES_PER_RENDER:
                raise InvalidInput(
                    f"the template includes other prompts more than {MAX_INCLUDES_PER_RENDER} "
                    "times; look for an include cycle"
                )
            included = self._resolve_include(name, selector)
            return included.template

        return resolve

    def _resolve_include(self, name: str, selector: str) -> PromptVersion:
        if selector.isascii() and selector.isdigit():
            found = self.get(name, version=int(selector))
        elif selector:
            found = self.get(name, label=selector)
        else:
            found = self.get(name)
        if found.kind != "text":
            raise InvalidInput(f"{name!r} is a chat prompt; only text prompts can be included")
        return found

    def render(self, version: PromptVersion, variables: dict[str, Any] | None = None):  # noqa: ANN201
        template = Template(version.kind, version.template if version.kind == "text"
                            else json.dumps(version.template, ensure_ascii=False, indent=1))
        values = dict(variables or {})
        after = version.kind == "text" and (version.model_config or {}).get("template_roles") == "prompty"
        if after:
            # A .prompty whose messages come out of the rendering (role lines printed by a loop,
            # thread inputs): rendered whole, then split at role lines as its runtime does.
            from .formats import prompty

            values = prompty.thread_values(values, version.model_config)
        rendered = render(
            template,
            values,
            version.variables,
            self._resolver(),
            label=f"prompt {version.name!r} v{version.version}",
            model_config=version.model_config,
        )
        return prompty.split_rendered(rendered) if after else rendered

    def resolved_template(self, version: PromptVersion) -> str | list[dict[str, str]]:
        """The template with every {% include %} expanded and the rest left as it is."""
        if version.kind != "text":
            # Chat messages include other prompts too: expand each message's content.
            return [{**m, "content": self._expand_includes(m["content"])} for m in version.template]
        return self._expand_includes(version.template)

    def _expand_includes(self, text: str) -> str:
        seen = 0
        pattern = re.compile(r"{%-?\s*include\s+(['\"])([^'\"]+)\1\s*-?%}")
        while (match := pattern.search(text)) and seen < MAX_INCLUDES_PER_RENDER:
            seen += 1
            included = self._resolve_include(*split_reference(match.group(2)))
            text = text[: match.start()] + included.template + text[match.end():]
        return text

    # ---- writing ----------------------------------------------------------------------

    def _prepare(
        self, prompt_name: str, template: Any, model_config: Any
    ) -> tuple[Template, dict[str, Any], list[dict[str, Any]], list[tuple[str, str]], str]:
        """Validate content before any transaction opens; nothing is written if this raises."""
        tmpl = normalize(template, allow_empty=is_handlebars(model_config))
        config = validate_model_config(model_config)
        if self.config_check is not None and config:
            self.config_check(config)
        used, includes = analyse(tmpl, config)
        variables = declare(used, config, optional_names(tmpl, config))
        names = {v["name"] for v in variables}
        for inc_name, selector in includes:
            if inc_name == prompt_name:
                raise InvalidInput(f"prompt {prompt_name!r} cannot include itself")
            included = self._resolve_include(inc_name, selector)
            self._check_cycle(prompt_name, inc_name, selector, [prompt_name, inc_name])
            for var in included.variables:
                if var["name"] not in names:
                    names.add(var["name"])
                    variables.append(var)
        return tmpl, config, variables, includes, content_hash(tmpl, config)

    def _check_cycle(self, origin: str, name: str, selector: str, path: list[str]) -> None:
        version = self._resolve_include(name, selector)
        _, includes = analyse(normalize(version.template, allow_empty=True), version.model_config)
        for inc_name, inc_selector in includes:
            # A pin to an existing version of the origin is no cycle: that version is
            # immutable and older than the one being saved, so it cannot include it.
            pinned_old = inc_name == origin and inc_selector.isascii() and inc_selector.isdigit()
            if (inc_name == origin and not pinned_old) or inc_name in path[1:-1]:
                chain = " -> ".join([*path, inc_name])
                raise InvalidInput(f"this include would form a cycle ({chain}); remove one of them")
            if len(path) > 16:
                raise InvalidInput("includes nest more than 16 deep; flatten them")
            self._check_cycle(origin, inc_name, inc_selector, [*path, inc_name])

    def _insert_version(
        self,
        prompt: dict[str, Any],
        prepared: tuple,
        *,
        branch: str,
        parent: int | None,
        merge_parent: int | None = None,
        message: str | None,
        author: str | None,
        source: str,
        action: str,
    ) -> PromptVersion:
        """Append a version and move its branch; call inside a write transaction."""
        tmpl, config, variables, includes, sha = prepared
        number = self._newest(prompt["id"]) + 1
        values = (
            prompt["id"], number, branch, tmpl.kind, tmpl.text,
            json.dumps(config, ensure_ascii=False, sort_keys=True),
            json.dumps(variables, ensure_ascii=False), sha, parent, merge_parent,
            message, author or self.actor, source, now(),
        )
        self.db.execute(
            f"INSERT INTO versions ({_VERSION_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values
        )
        self.db.execute(
            "UPDATE branches SET head = ? WHERE prompt_id = ? AND name = ?", [number, prompt["id"], branch]
        )
        # The quick check of the new version (promstack.evals.check) is queued in the same
        # transaction, so a version from any face is checked.
        checks.enqueue(self.db, prompt["id"], number, branch)
        for inc_name, selector in includes:
            self.db.execute(
                "INSERT OR IGNORE INTO dependencies (prompt_id, version, depends_on, selector) VALUES (?, ?, ?, ?)",
                [prompt["id"], number, inc_name, selector],
            )
        audit.record(
            self.db, author or self.actor, action, prompt_id=prompt["id"], version=number,
            detail={"name": prompt["name"], "branch": branch, "source": source, "sha256": sha,
                    **({"message": message} if message else {})},
        )
        saved = self._load(prompt["name"], values)
        saved.warnings = self._live_label_warnings(prompt, saved)
        return saved

    def create_prompt(
        self,
        name: str,
        template: Any,
        *,
        model_config: dict[str, Any] | None = None,
        description: str | None = None,
        message: str | None = None,
        author: str | None = None,
        source: str = "sdk",
        id: int | None = None,
    ) -> PromptVersion:
        validate_name(name)
        if id is not None and (isinstance(id, bool) or not isinstance(id, int) or not 1 <= id <= SQLITE_MAX_INT):
            raise InvalidInput(f"a prompt id is a positive whole number below 2**63; got {id!r}")
        prepared = self._prepare(name, template, model_config)
        with write(self.db):
            existing = self.db.execute(
                "SELECT id, archived_at FROM prompts WHERE name = ?", [name]
            ).fetchone()
            if existing:
                hint = (("it is archived: ", Step("restore_prompt", prompt=name), " brings it back")
                        if existing[1] else ("save a new version of it instead",))
                raise InvalidInput(f"prompt {name!r} exists already (id {existing[0]}); ", *hint)
            if id is not None and self.db.execute("SELECT 1 FROM prompts WHERE id = ?", [id]).fetchone():
                raise InvalidInput(f"prompt id {id} is taken; leave the id out to get a free one")
            stamp = now()
            cursor = self.db.execute(
                "INSERT INTO prompts (id, name, description, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
                [id, name, description, stamp, author or self.actor],
            )
            prompt = {"id": cursor.lastrowid, "name": name}
            self.db.execute(
                "INSERT INTO branches (prompt_id, name, head, forked_from, created_at, created_by) "
                "VALUES (?, 'main', 0, NULL, ?, ?)",
                [prompt["id"], stamp, author or self.actor],
            )
            return self._insert_version(
                prompt, prepared, branch=MAIN, parent=None, message=message or "Create prompt",
                author=author, source=source, action="create_prompt",
            )

    def save(
        self,
        prompt: PromptRef,
        template: Any = None,
        *,
        model_config: dict[str, Any] | None = None,
        message: str | None = None,
        branch: str = MAIN,
        author: str | None = None,
        source: str = "sdk",
        keep_config: bool = False,
    ) -> PromptVersion:
        """A new version on `branch`; content identical to the branch head returns the head.
        `keep_config`: `model_config` sets the keys it holds and the head's other keys are kept,
        as when a prompt file that carries no (or part of a) model config is saved."""
        row = self.prompt_row(prompt)
        if template is None and model_config is None:
            raise InvalidInput("give a new template, a new model_config, or both")
        # Content given in full is validated before the lock is taken; a part left out comes
        # from the head as it is under the lock, or a save made meanwhile would be reverted.
        prepared = (self._prepare(row["name"], template, model_config)
                    if template is not None and model_config is not None and not keep_config else None)
        with write(self.db):
            # Read the head inside the lock: another process may have saved since.
            current = self._branch_head(row["id"], row["name"], branch)
            head_row = self._version_row(row["id"], current)
            if prepared is None:
                head = self._load(row["name"], head_row)
                if keep_config and model_config is not None:
                    model_config = {**head.model_config, **model_config}
                prepared = self._prepare(
                    row["name"],
                    head.template if template is None else template,
                    head.model_config if model_config is None else model_config,
                )
            if head_row[7] == prepared[4]:
                return self._load(row["name"], head_row, created=False)
            return self._insert_version(
                row, prepared, branch=branch, parent=current, message=message, author=author,
                source=source, action="save",
            )

    def _live_label_warnings(self, prompt: dict[str, Any], saved: PromptVersion) -> list[str]:
        required = {v["name"] for v in saved.variables if v.get("required")}
        if not required:
            return []
        warnings = []
        # One query for every live label, reading only the variables (not whole templates):
        # this runs inside every save's write transaction.
        live_rows = {
            label: (number, variables) for label, number, variables in self.db.execute(
                f"SELECT l.name, l.version, v.variables FROM labels l JOIN versions v "
                f"ON v.prompt_id = l.prompt_id AND v.number = l.version "
                f"WHERE l.prompt_id = ? AND l.name IN ({', '.join('?' * len(LIVE_LABELS))})",
                [prompt["id"], *LIVE_LABELS],
            )
        }
        for label in LIVE_LABELS:
            if label not in live_rows:
                continue
            live_version, live_variables = live_rows[label]
            new = sorted(required - {v["name"] for v in json.loads(live_variables)})
            if new:
                names = ", ".join(repr(n) for n in new)
                warnings.append(
                    f"version {saved.version} requires {names}, which {label} (version {live_version}) "
                    f"does not: callers of {label} do not pass it yet; give it a default or update "
                    f"them before moving the label"
                )
        return warnings

    def rollback(
        self,
        prompt: PromptRef,
        to_version: int,
        *,
        branch: str = MAIN,
        message: str | None = None,
        author: str | None = None,
    ) -> PromptVersion:
        """Append a version whose content equals `to_version`; nothing is rewritten."""
        row = self.prompt_row(prompt)
        target = self._version(row, to_version)
        prepared = self._prepare(row["name"], target.template, target.model_config)
        with write(self.db):
            current = self._branch_head(row["id"], row["name"], branch)
            head_row = self._version_row(row["id"], current)
            if head_row[7] == prepared[4]:
                same = "is" if current == target.version else f"has the same content as version {current}, which is"
                raise InvalidInput(
                    f"version {target.version} {same} already the head of {branch!r}; nothing to roll back"
                )
            return self._insert_version(
                row, prepared, branch=branch, parent=current,
                message=message or f"Roll back to version {target.version}",
                author=author, source="rollback", action="rollback",
            )

    def create_branch(
        self, prompt: PromptRef, name: str, *, from_version: int | None = None, author: str | None = None
    ) -> Branch:
        row = self.prompt_row(prompt)
        validate_ref_name(name, "branch")
        with write(self.db):
            start = (self._version(row, from_version).version if from_version is not None
                     else self._branch_head(row["id"], row["name"], MAIN))
            if self.db.execute(
                "SELECT 1 FROM branches WHERE prompt_id = ? AND name = ?", [row["id"], name]
            ).fetchone():
                raise InvalidInput(f"prompt {row['name']!r} already has a branch {name!r}; pick another name")
            stamp = now()
            self.db.execute(
                "INSERT INTO branches (prompt_id, name, head, forked_from, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [row["id"], name, start, start, stamp, author or self.actor],
            )
            audit.record(self.db, author or self.actor, "create_branch", prompt_id=row["id"], version=start,
                         detail={"name": row["name"], "branch": name})
        return Branch(row["id"], name, start, start, stamp, author or self.actor)

    def _merge_base(self, prompt_id: int, a: int, b: int) -> int | None:
        """The newest common ancestor of two versions, following both parents of merges."""
        parents: dict[int, tuple[int | None, int | None]] = {
            n: (p, m) for n, p, m in self.db.execute(
                "SELECT number, parent, merge_parent FROM versions WHERE prompt_id = ?", [prompt_id]
            )
        }

        def ancestors(start: int) -> set[int]:
            seen, todo = set(), [start]
            while todo:
                n = todo.pop()
                if n is None or n in seen:
                    continue
                seen.add(n)
                todo.extend(parents.get(n, (None, None)))
            return seen

        common = ancestors(a) & ancestors(b)
        return max(common) if common else None

    def merge(
        self,
        prompt: PromptRef,
        branch: str,
        *,
        into: str = MAIN,
        message: str | None = None,
        author: str | None = None,
    ) -> PromptVersion:
        """Apply `branch`'s change since the fork point onto `into`'s head (a 3-way merge)."""
        row = self.prompt_row(prompt)
        if branch == into:
            raise InvalidInput(f"cannot merge branch {branch!r} into itself; name another target branch")
        theirs = self.get(row["id"], branch=branch)
        ours = self.get(row["id"], branch=into)
        base_number = self._merge_base(row["id"], ours.version, theirs.version)
        base = self._version(row, base_number) if base_number else None
        if base is not None and base.version == theirs.version:
            raise InvalidInput(
                f"branch {branch!r} has no change that {into!r} lacks (its head, version "
                f"{theirs.version}, is already in {into!r}); nothing to merge"
            )
        template, config = self._merge_content(row["name"], branch, into, base, ours, theirs)
        prepared = self._prepare(row["name"], template, config)
        with write(self.db):
            if self._branch_head(row["id"], row["name"], into) != ours.version or \
                    self._branch_head(row["id"], row["name"], branch) != theirs.version:
                raise InvalidInput("the branches moved while merging; run the merge again")
            return self._insert_version(
                row, prepared, branch=into, parent=ours.version, merge_parent=theirs.version,
                message=message or f"Merge branch {branch!r} into {into!r}",
                author=author, source="merge", action="merge",
            )

    def _merge_content(self, name, branch, into, base, ours, theirs):  # noqa: ANN001, ANN202
        if ours.kind != theirs.kind:
            raise MergeConflict(
                f"{branch!r} and {into!r} of {name!r} hold different kinds of prompt (text and chat); "
                "convert one of them first",
                [{"field": "template"}],
            )
        conflicts: list[dict[str, Any]] = []
        base_text = _as_text(base) if base else ""
        result = merge3(base_text, _as_text(ours), _as_text(theirs))
        for c in result.conflicts:
            conflicts.append({"field": "template", **c})
        base_config = base.model_config if base else {}
        config = dict(ours.model_config)
        for key in sorted(set(base_config) | set(ours.model_config) | set(theirs.model_config)):
            b, o, t = base_config.get(key, _MISSING), ours.model_config.get(key, _MISSING), \
                theirs.model_config.get(key, _MISSING)
            if t in (b, o):
                continue
            if o != b:
                conflicts.append({"field": f"model_config.{key}", "base": _show(b), "ours": _show(o), "theirs": _show(t)})
            elif t is _MISSING:
                config.pop(key, None)
            else:
                config[key] = t
        if conflicts:
            where = "; ".join(
                f"line {c['line']}: {into!r} has {c['ours']!r}, {branch!r} has {c['theirs']!r}"
                if "line" in c else f"{c['field']}: {into!r} has {c.get('ours')!r}, {branch!r} has {c.get('theirs')!r}"
                for c in conflicts[:3]
            )
            raise MergeConflict(
                f"merging {branch!r} into {into!r} of {name!r} conflicts ({len(conflicts)} place"
                f"{'s' if len(conflicts) > 1 else ''}: {where}); save a version on {into!r} or {branch!r} "
                "that settles it, then merge again",
                conflicts,
            )
        if ours.kind == "text":
            return result.text, config
        try:
            return json.loads(result.text), config
        except ValueError:
            raise MergeConflict(
                f"merging {branch!r} into {into!r} of {name!r} changes the same chat messages on both "
                "sides; save a version that settles it, then merge again",
                [{"field": "template"}],
            ) from None

    def set_label(
        self,
        prompt: PromptRef,
        label: str,
        version: int,
        *,
        reason: str | None = None,
        actor: str | None = None,
        cleared: str | None = None,
    ) -> LabelMove:
        """Point `label` at `version`. `cleared` is the engine saying why this move may skip the
        label guard (the gate passed, a forced deployment, a rollback); faces never pass it."""
        row = self.prompt_row(prompt)
        validate_ref_name(label, "label")
        if label == LATEST:
            raise InvalidInput("'latest' always follows the head of main; it cannot be set")
        if label.isdigit():
            raise InvalidInput(
                f"a label cannot be only digits ({label!r}): 'name@{label}' already means version {label}"
            )
        target = self._version(row, version)
        with write(self.db):
            return self._move_label(row, label, target.version, reason=reason, actor=actor, cleared=cleared)

    def _move_label(self, prompt, label, to_version, *, reason, actor, cleared=None,  # noqa: ANN001
                    how: str = "set") -> LabelMove:
        current = self.db.execute(
            "SELECT version FROM labels WHERE prompt_id = ? AND name = ?", [prompt["id"], label]
        ).fetchone()
        from_version = current[0] if current else None
        if self.label_guard is not None and not cleared:
            self.label_guard(prompt, label, from_version, to_version, how)
        stamp, who = now(), actor or self.actor
        if to_version is None:
            self.db.execute("DELETE FROM labels WHERE prompt_id = ? AND name = ?", [prompt["id"], label])
        else:
            self.db.execute(
                "INSERT INTO labels (prompt_id, name, version, updated_at, updated_by) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (prompt_id, name) DO UPDATE SET version = excluded.version, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                [prompt["id"], label, to_version, stamp, who],
            )
        self.db.execute(
            "INSERT INTO label_history (prompt_id, label, from_version, to_version, actor, reason, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [prompt["id"], label, from_version, to_version, who, reason, stamp],
        )
        audit.record(self.db, who, "set_label" if to_version is not None else "remove_label",
                     prompt_id=prompt["id"], version=to_version,
                     detail={"name": prompt["name"], "label": label, "from": from_version, "to": to_version,
                             **({"reason": reason} if reason else {})})
        return LabelMove(prompt["id"], label, from_version, to_version, who, reason, stamp)

    def remove_label(self, prompt: PromptRef, label: str, *, reason: str | None = None,
                     actor: str | None = None) -> LabelMove:
        row = self.prompt_row(prompt)
        with write(self.db):
            self.label_target(row, label)
            return self._move_label(row, label, None, reason=reason, actor=actor, how="remove")

    def rollback_label(self, prompt: PromptRef, label: str, *, reason: str | None = None,
                       actor: str | None = None) -> LabelMove:
        """Point `label` back where it pointed before its last move."""
        row = self.prompt_row(prompt)
        with write(self.db):
            current = self.label_target(row, label)
            last = self.db.execute(
                "SELECT from_version FROM label_history WHERE prompt_id = ? AND label = ? ORDER BY id DESC LIMIT 1",
                [row["id"], label],
            ).fetchone()
            if not last or last[0] is None:
                raise InvalidInput(
                    f"label {label!r} of {row['name']!r} has pointed only at version {current}; nothing to roll back to"
                )
            # Back to the version this label served before its last move: the way out, never
            # a way in, so no gate (promstack.deploy.rollback is the same rule for environments).
            return self._move_label(row, label, last[0], reason=reason or f"roll back {label}", actor=actor,
                                    cleared="rollback")

    def delete_prompt(self, prompt: PromptRef, *, actor: str | None = None) -> Prompt:
        row = self.prompt_row(prompt)
        with write(self.db):
            self.db.execute("UPDATE prompts SET archived_at = ? WHERE id = ?", [now(), row["id"]])
            audit.record(self.db, actor or self.actor, "delete_prompt", prompt_id=row["id"],
                         detail={"name": row["name"]})
        return self._summary(row["id"])

    def restore_prompt(self, prompt: PromptRef, *, actor: str | None = None) -> Prompt:
        row = self.prompt_row(prompt, archived_ok=True)
        if not row["archived_at"]:
            raise InvalidInput(f"prompt {row['name']!r} is not deleted; there is nothing to restore")
        with write(self.db):
            self.db.execute("UPDATE prompts SET archived_at = NULL WHERE id = ?", [row["id"]])
            audit.record(self.db, actor or self.actor, "restore_prompt", prompt_id=row["id"],
                         detail={"name": row["name"]})
        return self._summary(row["id"])

    def rename_prompt(self, prompt: PromptRef, new_name: str, *, actor: str | None = None) -> Prompt:
        """Give a prompt a new name; its id, versions, branches and labels stay as they are."""
        row = self.prompt_row(prompt, archived_ok=True)
        validate_name(new_name)
        if new_name == row["name"]:
            return self._summary(row["id"])
        with write(self.db):
            taken = self.db.execute("SELECT id FROM prompts WHERE name = ?", [new_name]).fetchone()
            if taken:
                raise InvalidInput(
                    f"cannot rename {row['name']!r} to {new_name!r}: prompt {taken[0]} has that name; "
                    "pick another name or delete that prompt first"
                )
            # Versions are immutable, so an include by the old name could never be mended.
            users = self.db.execute(
                "SELECT DISTINCT p.name FROM dependencies d JOIN prompts p ON p.id = d.prompt_id "
                "WHERE d.depends_on = ? AND d.prompt_id != ? ORDER BY p.name",
                [row["name"], row["id"]],
            ).fetchall()
            if users:
                names = ", ".join(repr(u[0]) for u in users)
                raise InvalidInput(
                    f"cannot rename {row['name']!r}: {names} include it by that name, and their "
                    "stored versions would stop rendering; keep the name, or copy it to a new prompt"
                )
            self.db.execute("UPDATE prompts SET name = ? WHERE id = ?", [new_name, row["id"]])
            audit.record(self.db, actor or self.actor, "rename_prompt", prompt_id=row["id"],
                         detail={"from": row["name"], "to": new_name})
        return self._summary(row["id"])

    def _summary(self, prompt_id: int) -> Prompt:
        return next(p for p in self.list_prompts(include_archived=True) if p.id == prompt_id)

    def diff(self, prompt: PromptRef, from_version: int, to_version: int | None = None) -> Diff:
        row = self.prompt_row(prompt, archived_ok=True)
        old = self._version(row, from_version)
        new = self._version(row, to_version if to_version is not None
                            else self._branch_head(row["id"], row["name"], MAIN))
        old_text, new_text = _as_text(old), _as_text(new)
        words = word_diff(old_text, new_text)
        changes = {
            key: {"from": old.model_config.get(key), "to": new.model_config.get(key)}
            for key in sorted(set(old.model_config) | set(new.model_config))
            if old.model_config.get(key, _MISSING) != new.model_config.get(key, _MISSING)
        }
        return Diff(
            prompt_id=row["id"], name=row["name"], from_version=old.version, to_version=new.version,
            unified=unified_diff(old_text, new_text, old_name=f"{row['name']}@{old.version}",
                                 new_name=f"{row['name']}@{new.version}"),
            words=words.segments, added=words.added_lines, removed=words.removed_lines,
            added_words=words.added_words, removed_words=words.removed_words, config_changes=changes,
        )


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


def _show(value: Any) -> Any:
    return None if value is _MISSING else value


def _as_text(version: PromptVersion) -> str:
    """The text that diffs and merges work on; chat messages as indented JSON, one field a line."""
    if version.kind == "text":
        return version.template
    return json.dumps(version.template, ensure_ascii=False, indent=1)


def _normalise_time(at: str) -> str:
    from datetime import UTC, datetime

    try:
        parsed = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{at!r} is not a time; use ISO 8601 such as 2026-01-09T14:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
