"""Suites as the engine keeps them: import one (a file or text), sync the workspace's suite files,
look one up, and say which prompt a suite tests and which suite a prompt's tests use.

Which prompt a suite tests, when none is named (so that the guide's `promstack test --suite
regression` works as written): `--prompt` if given; else the suite's own prompt (its sidecar
`tests/prompts/<suite>.yml` says `prompt: 42`, a JSON suite's `"prompt"`, or
`promstack suite import ... --prompt 42`); else the environment's `PROMPT_ID` (the guide's
workflow sets it) or `PROMSTACK_PROMPT`; else an error that says how to tie one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.errors import InvalidInput, NotFound, PromStackError, Step
from store.secrets import redact
from store.workspace import workspace_root

from . import suites as S
from .judge import load_judge
from .prompt_yml import cases_from_prompt_yml

if TYPE_CHECKING:
    from ..client import Client

PREFERRED_SUITE = "regression"


def root_of(client: Client) -> Path | None:
    path = getattr(client.store, "path", None)
    return workspace_root(path) if path is not None else None


def import_suite(client: Client, source: str | os.PathLike | None = None, *, text: str | None = None,
                 fmt: str | None = None, name: str | None = None, prompt: Any = None,
                 config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Import a suite from a file (CSV/JSON/JSONL) or from text; replaces a suite of that name.
    A file that is no suite (`.env`, a key, the store) is refused before it is read, and an
    error that quotes what was read has its secrets redacted."""
    with secrets_redacted():
        return _import_suite(client, source, text=text, fmt=fmt, name=name, prompt=prompt, config=config)


@contextlib.contextmanager
def secrets_redacted() -> Iterator[None]:
    """An error raised inside that quotes what a suite file holds has its secrets redacted."""
    try:
        yield
    except PromStackError as exc:
        shown = redact(str(exc))
        if shown != str(exc):
            exc.args = (shown,)
        raise


def _import_suite(client: Client, source: str | os.PathLike | None = None, *, text: str | None = None,
                  fmt: str | None = None, name: str | None = None, prompt: Any = None,
                  config: dict[str, Any] | None = None) -> dict[str, Any]:
    evals = client.evals
    if (source is None) == (text is None):
        raise InvalidInput("give a suite file, or the cases as text, not both")
    settings: dict[str, Any] = dict(config or {})
    if source is not None:
        path = Path(source)
        file_config, cases = S.parse_file(path, fmt)
        sidecar = S.sidecar_for(path)
        if sidecar is not None:
            settings = {**S.read_sidecar(sidecar), **settings}
        settings = {**file_config, **settings}
        sha = S.file_sha(path)
        if sidecar is not None:
            # The suite changes when its settings do: the sidecar is part of its hash.
            sha = hashlib.sha256((sha + S.file_sha(sidecar)).encode()).hexdigest()
        fmt = S.detect_format(path, fmt)
        name = S.validate_suite_name(name or S.suite_name_of(path))
        origin = _origin(client, path)
    else:
        if not fmt:
            raise InvalidInput("say the format of the cases: csv, json or jsonl")
        name = S.validate_suite_name(name or "")
        file_config, cases_list = S.parse_text(text, fmt, name=name)
        settings = {**file_config, **settings}
        cases = iter(cases_list)
        sha = hashlib.sha256(text.encode()).hexdigest()
        origin = "import"
    prompt_ref = prompt if prompt is not None else settings.pop("prompt", None)
    settings.pop("prompt", None)
    prompt_id = client.store.prompts.prompt_id(prompt_ref) if prompt_ref not in (None, "") else None
    if "judge" in settings and settings["judge"] is not None:
        load_judge(settings["judge"])  # reject a bad judge at import, not at run time
    return evals.save_suite(name, cases, fmt=fmt, source=origin, sha256=sha, prompt_id=prompt_id,
                            config=settings)


def upload_suite(client: Client, source: str | os.PathLike | None = None, *, text: str | None = None,
                 fmt: str | None = None, name: str | None = None, prompt: Any = None) -> dict[str, Any]:
    """A suite to a team server's store (the client is remote): a file is read here, as a local
    import reads it (its settings file too), and sent as one JSON document."""
    with secrets_redacted():
        if source is not None:
            text, fmt, name = _as_json_suite(Path(source), fmt, name)
        elif not fmt:
            raise InvalidInput("say the format of the cases: csv, json or jsonl")
        found = client.import_suite(text, fmt=fmt, name=S.validate_suite_name(name or ""), prompt=prompt)
    return {"name": found["suite"], "case_count": found["cases"], "prompt_id": found["prompt_id"],
            "source": found["source"], "config": found["settings"]}


def _as_json_suite(path: Path, fmt: str | None, name: str | None) -> tuple[str, str, str]:
    """A suite file (and its settings file) as one JSON document, read here as a local import reads it."""
    import json

    file_config, cases = S.parse_file(path, fmt)
    sidecar = S.sidecar_for(path)
    settings = {**(S.read_sidecar(sidecar) if sidecar is not None else {}), **file_config}
    name = S.validate_suite_name(name or S.suite_name_of(path))
    text = json.dumps({**settings, "cases": [case_object(c) for c in cases]}, ensure_ascii=False, default=str)
    return text, "json", name


def case_object(case: dict[str, Any]) -> dict[str, Any]:
    """A parsed or stored case as a JSON suite's case object, which imports to the same case
    (the same case key) wherever it is imported."""
    return {"input": case["input"], "expected_output": case.get("expected"), "vars": case.get("variables") or {},
            "assert": case.get("assertions") or []}


def _origin(client: Client, path: Path) -> str:
    root = root_of(client)
    try:
        return "file:" + str(path.resolve().relative_to(root)) if root else f"file:{path}"
    except ValueError:
        return f"file:{path.resolve()}"


def sync_workspace(client: Client, only: str | None = None) -> list[str]:
    """(Re)import suites kept as files in tests/prompts/ whose bytes changed. Returns their names."""
    root = root_of(client)
    if root is None:
        return []
    evals = client.evals
    changed = []
    for name, path in S.workspace_suite_files(root).items():
        if only is not None and name != only:
            continue
        stored = evals.find_suite(name)
        sha = S.file_sha(path)
        sidecar = S.sidecar_for(path)
        if sidecar is not None:
            sha = hashlib.sha256((sha + S.file_sha(sidecar)).encode()).hexdigest()
        if stored is not None and stored["sha256"] == sha:
            continue
        import_suite(client, path)
        changed.append(name)
    return changed


def get_suite(client: Client, name: str) -> dict[str, Any]:
    S.validate_suite_name(name)
    sync_workspace(client, only=name)
    return client.evals.suite(name)


def list_suites(client: Client) -> list[dict[str, Any]]:
    sync_workspace(client)
    return client.evals.suites()


def show_suite(client: Client, name: str, *, limit: int = 20, offset: int = 0) -> dict[str, Any]:
    suite = get_suite(client, name)
    return {**suite, "cases": client.evals.cases(suite["id"], limit=limit, offset=offset)}


def resolve_prompt(client: Client, suite: dict[str, Any], prompt: Any) -> int:
    if prompt not in (None, ""):
        return client.store.prompts.prompt_id(prompt)
    if suite.get("prompt_id"):
        return suite["prompt_id"]
    for var in ("PROMSTACK_PROMPT", "PROMPT_ID"):
        value = os.environ.get(var)
        if value:
            return client.store.prompts.prompt_id(value)
    raise InvalidInput(
        f"suite {suite['name']!r} is not tied to a prompt: give ", Step.arg("prompt"),
        f", or add 'prompt: <id or name>' to tests/prompts/{suite['name']}.yml, or import it again with ",
        Step.arg("prompt", of="import_suite"),
    )


def prompt_file_suite(client: Client, prompt_id: int) -> dict[str, Any] | None:
    """The suite a prompt's own .prompt.yml carries (testData + evaluators, kept by the file
    watcher), named after the prompt and refreshed when the test data changes; None if none."""
    import json

    from store.filesync import prompt_test_data

    test_data = prompt_test_data(client.store, prompt_id)
    if not test_data or not test_data.get("testData"):
        return None
    name = client.get_prompt(prompt_id).name
    body = json.dumps(test_data, ensure_ascii=False, sort_keys=True)
    sha = hashlib.sha256(body.encode()).hexdigest()
    evals = client.evals
    found = evals.find_suite(name)
    if found is not None and found["sha256"] == sha:
        return found
    cases = cases_from_prompt_yml(test_data, name)
    return evals.save_suite(name, iter(cases), fmt="prompt.yml", source=f"prompt:{name}", sha256=sha,
                            prompt_id=prompt_id)


def suite_for_prompt(client: Client, prompt_id: int) -> dict[str, Any]:
    """A prompt's default suite: the one tied to it (named 'regression' if several), else the
    test data of its own .prompt.yml file."""
    sync_workspace(client)
    evals = client.evals
    tied = evals.suites(prompt_id)
    if not tied:
        own = prompt_file_suite(client, prompt_id)
        if own is not None:
            tied = [own]
    if not tied:
        env_prompt = os.environ.get("PROMSTACK_PROMPT") or os.environ.get("PROMPT_ID")
        untied = [s for s in evals.suites() if not s["prompt_id"]]
        if env_prompt and client.store.prompts.prompt_id(env_prompt) == prompt_id:
            tied = untied
    if not tied:
        raise NotFound(
            f"no test suite is tied to prompt {prompt_id}: give ", Step.arg("suite"),
            f", or add 'prompt: {prompt_id}' to tests/prompts/<suite>.yml",
        )
    if len(tied) == 1:
        return tied[0]
    for suite in tied:
        if suite["name"] == PREFERRED_SUITE:
            return suite
    raise InvalidInput(
        f"prompt {prompt_id} has several suites ({', '.join(s['name'] for s in tied)}); give ",
        Step.arg("suite"),
    )
