"""Test suites as files: parsing CSV / JSON / JSONL into cases, sidecars, the workspace's suite
files (`catalog` keeps them in the store; a .prompt.yml's test data is `prompt_yml`).

A case is `{input, expected, variables, assertions, line}`. In a CSV, the header names the
columns: `input` is required, `expected_output` (or `expected`) is optional, an `assertions`
column holds a JSON list, a column named `assert:<type>` adds that assertion with the cell as
its value, and every other column is a template variable. The guide's file works as it is:

    input,expected_output
    "이 제품의 장점은?","긍정적 답변"

Suites are files in the workspace (`tests/prompts/<suite>.csv|json|jsonl`, with an optional
sidecar `tests/prompts/<suite>.yml` naming the prompt, judge and threshold) or rows in the
store. A file is the source of truth when it exists: it is (re)imported when its bytes change.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from store.errors import InvalidInput, NotFound, Step

from .assertions import validate_assertion

SUITE_DIR = Path("tests") / "prompts"
FORMATS = ("csv", "json", "jsonl")
NAME_RE = re.compile(r"^[\w][\w.-]*(/[\w][\w.-]*)*\Z")
INPUT_COLUMNS = ("input",)
EXPECTED_COLUMNS = ("expected_output", "expected")
_SIDECAR_KEYS = {"prompt", "judge", "judge_model", "threshold", "models", "assertions", "description",
                 "min_pass", "check"}  # check: false, no quick check of the prompt's saves (evals.check)


def validate_suite_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 100:
        raise InvalidInput(
            f"{name!r} is not a valid suite name: use letters, digits, '_', '-', '.' (e.g. 'regression')"
        )
    return name


def file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


PROMPT_YML_SUFFIXES = (".prompt.yml", ".prompt.yaml")


def is_prompt_yml(path: Path) -> bool:
    """A GitHub Models prompt file, whose testData and evaluators import as a suite."""
    return Path(path).name.lower().endswith(PROMPT_YML_SUFFIXES)


def suite_name_of(path: Path) -> str:
    """The suite a file imports as by default: its name without the extension(s)."""
    name = Path(path).name
    for suffix in PROMPT_YML_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt in (None, "", "prompt.yml") and is_prompt_yml(path):
        return "prompt.yml"
    if fmt:
        fmt = fmt.lower().lstrip(".")
        if fmt not in FORMATS:
            raise InvalidInput(f"suite format must be one of {', '.join(FORMATS)}; got {fmt!r}")
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InvalidInput(
            f"{path.name}: cannot tell the format from the extension; name it .csv, .json or .jsonl "
            "(or give ", Step.arg("format"), ")",
        )
    return suffix


# Files no import reads, whatever the caller names them as: environment files, keys, the store
# (its database, audit key, cache and journal) and git's own folder. Checked by name before a byte
# is read, on the path as given and on the file it resolves to (a link named cases.csv to .env).
_SECRET_DIRS = {".promstack", ".git", ".ssh", ".gnupg", ".aws"}
_SECRET_NAMES = re.compile(
    r"(?i)^(?:\.env.*|.*\.env|.*\.(?:key|pem|p12|pfx|crt|der|keystore|jks|kdbx)|id_[a-z0-9_]+(?:\.pub)?"
    r"|\.netrc|\.npmrc|\.pypirc|\.pgpass|credentials|audit\.key)$"
)
READABLE_SUFFIXES = (*FORMATS, "txt", "tsv")


def check_readable(path: Path, what: str = "a suite file", suffixes: tuple[str, ...] = READABLE_SUFFIXES) -> None:
    """Refuse, before reading, a file no import may read: by name (`.env*`, keys, `.promstack/`,
    `.git/`) and by kind (only `suffixes`)."""
    kinds = ", ".join(f".{s}" for s in suffixes)
    for candidate in (Path(path), Path(path).resolve()):
        parts = candidate.parts
        if any(part in _SECRET_DIRS for part in parts[:-1]) or _SECRET_NAMES.match(candidate.name):
            raise InvalidInput(
                f"{Path(path).name!r} is not {what}: environment files, keys, the .promstack folder and "
                f".git are never read by an import; name a {kinds} file"
            )
    if Path(path).suffix.lower().lstrip(".") not in suffixes and not (suffixes is READABLE_SUFFIXES
                                                                       and is_prompt_yml(path)):
        raise InvalidInput(f"{Path(path).name!r} is not {what}: name a {kinds} file")


def check_utf8(path: Path) -> None:
    """A streaming pass that names the first line that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    f"{path.name} line {number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                    f"{exc.start + 1}); save the file as UTF-8"
                ) from None
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InvalidInput(f"{path.name}: the file ends inside a multi-byte character; save it as UTF-8") from None


def parse_file(path: Path, fmt: str | None = None) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """(suite-level config found in the file, cases). Cases are yielded lazily; errors name the line."""
    path = Path(path)
    check_readable(path)
    if not path.is_file():
        raise NotFound(f"there is no file {str(path)!r}")
    fmt = detect_format(path, fmt)
    check_utf8(path)
    if fmt == "prompt.yml":
        from .prompt_yml import prompt_yml_cases  # the YAML readers load for such a file only

        return {}, iter(prompt_yml_cases(path.read_text(encoding="utf-8"), path.name))
    if fmt == "csv":
        header = _csv_header(path)
        return {}, _csv_cases(path, header)
    if fmt == "jsonl":
        return {}, _jsonl_cases(path)
    return _json_suite(path)


def parse_text(text: str, fmt: str, *, name: str = "<cases>") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The same parsers over text handed in (MCP, stdin)."""
    fmt = detect_format(Path(name + "." + fmt), fmt)
    if fmt == "csv":
        rows = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=True)
        return {}, list(_csv_rows(rows, name))
    if fmt == "jsonl":
        return {}, list(_jsonl_lines(io.StringIO(text), name))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{name} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    return _json_document(document, name)


# ---- CSV ------------------------------------------------------------------------------------


def _csv_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        first = next(csv.reader(fh), None)
    if not first:
        raise InvalidInput(f"{path.name} line 1: the file is empty; the first line must name the columns (input,expected_output)")
    return first


def _csv_cases(path: Path, header: list[str]) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        yield from _csv_rows(csv.reader(fh, strict=True), path.name)


def _csv_rows(reader: Any, name: str) -> Iterator[dict[str, Any]]:
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(f"{name} line 1: the file is empty; the first line must name the columns (input,expected_output)") from None
    except csv.Error as exc:
        raise InvalidInput(f"{name} line 1: {_csv_fix(exc)}") from None
    columns = [h.strip() for h in header]
    lowered = [c.lower() for c in columns]
    if "input" not in lowered:
        raise InvalidInput(
            f"{name} line 1: there is no 'input' column (the header is {','.join(columns)!r}); "
            "the first line must name the columns, e.g. input,expected_output"
        )
    if len(set(lowered)) != len(lowered):
        raise InvalidInput(f"{name} line 1: a column name appears twice in {','.join(columns)!r}")
    previous_end = reader.line_num
    cases = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            if not cases:
                raise InvalidInput(
                    f"{name} has no cases: below the header ({','.join(columns)}) add one line per case"
                ) from None
            return
        except csv.Error as exc:
            raise InvalidInput(f"{name} line {previous_end + 1}: {_csv_fix(exc)}") from None
        start = previous_end + 1
        previous_end = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(columns):
            raise InvalidInput(
                f"{name} line {start}: {len(row)} fields where the header has {len(columns)} "
                f"({','.join(columns)}); quote cells that contain commas"
            )
        cases += 1
        yield _case_from_mapping(dict(zip(columns, row, strict=True)), f"{name} line {start}", start)


def _csv_fix(exc: csv.Error) -> str:
    """What the csv module's complaint means for the person editing the file."""
    text = str(exc)
    if "unexpected end of data" in text:
        return ('a quoted cell is not closed; add the closing " (a quote inside a quoted cell is '
                'written twice: "")')
    if "expected after" in text:
        return ('a quoted cell has text after its closing quote; write a quote inside a quoted cell '
                'twice ("") and put a comma right after the closing one')
    if "field larger than field limit" in text:
        return (f"a cell is longer than {csv.field_size_limit():,} characters, the most a CSV cell "
                "may hold here; shorten it or use a JSONL suite")
    if "NUL" in text:
        return "the line holds a NUL byte, which is not text; save the file as UTF-8 text"
    if "new-line character seen in unquoted field" in text:
        return "a line break inside a cell; put the cell in double quotes"
    return f"{text}; check the quotes and commas on this line"


# ---- JSON / JSONL ---------------------------------------------------------------------------


def _jsonl_cases(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig") as fh:
        yield from _jsonl_lines(fh, path.name)


def _jsonl_lines(lines: Any, name: str) -> Iterator[dict[str, Any]]:
    cases = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{name} line {number}: not valid JSON ({exc.msg})") from None
        cases += 1
        yield _case_from_object(item, f"{name} line {number}", number)
    if not cases:
        raise InvalidInput(f"{name} has no cases: write one JSON object per line, e.g. "
                           '{"input": "...", "expected_output": "..."}')


def _json_suite(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path.name} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    config, cases = _json_document(document, path.name)
    return config, iter(cases)


def _json_document(document: Any, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    config: dict[str, Any] = {}
    if isinstance(document, dict):
        if "cases" not in document or not isinstance(document["cases"], list):
            raise InvalidInput(f"{name}: a JSON suite is a list of cases, or an object with a 'cases' list")
        config = check_config({k: v for k, v in document.items() if k != "cases"}, name)
        items = document["cases"]
    elif isinstance(document, list):
        items = document
    else:
        raise InvalidInput(f"{name}: a JSON suite is a list of cases, or an object with a 'cases' list")
    if not items:
        raise InvalidInput(f"{name} has no cases: its list of cases is empty")
    return config, [_case_from_object(item, f"{name} case {i + 1}", None) for i, item in enumerate(items)]


def _case_from_object(item: Any, where: str, line: int | None) -> dict[str, Any]:
    if isinstance(item, str):
        item = {"input": item}
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: a case is an object such as {{\"input\": \"...\", \"expected_output\": \"...\"}}")
    item = dict(item)
    variables = item.pop("vars", None) or item.pop("variables", None) or {}
    if not isinstance(variables, dict):
        raise InvalidInput(f"{where}: 'vars' must be an object of template variables")
    assertions = item.pop("assert", None) or item.pop("assertions", None) or []
    mapping = {**{k: v for k, v in item.items()}, "__assertions": assertions, "__vars": variables}
    return _case_from_mapping(mapping, where, line)


def _case_from_mapping(row: dict[str, Any], where: str, line: int | None) -> dict[str, Any]:
    input_value = None
    expected = None
    assertions: list[dict[str, Any]] = []
    variables: dict[str, Any] = dict(row.pop("__vars", {}) or {})
    extra = row.pop("__assertions", None)
    if extra is not None:
        if isinstance(extra, str):
            extra = _json_cell(extra, where, "assertions") if extra.strip() else []
        if not isinstance(extra, list):
            extra = [extra]
        assertions.extend(extra)
    has_input = False
    for column, value in row.items():
        key = column.strip()
        low = key.lower()
        if low in INPUT_COLUMNS:
            input_value, has_input = value, True
        elif low in EXPECTED_COLUMNS:
            expected = value if value not in ("", None) else None
        elif low == "assertions":
            if isinstance(value, str):
                value = _json_cell(value, where, "assertions") if value.strip() else []
            assertions.extend(value if isinstance(value, list) else [value])
        elif low.startswith("assert:"):
            if value not in ("", None):
                assertions.append({"type": key.split(":", 1)[1].strip(), "value": value})
        else:
            variables[key] = value
    if not has_input and not variables:
        raise InvalidInput(f"{where}: the case has no 'input'")
    if input_value is not None and not isinstance(input_value, str):
        input_value = json.dumps(input_value, ensure_ascii=False)
    if expected is not None and not isinstance(expected, str):
        expected = json.dumps(expected, ensure_ascii=False)
    checked = []
    for spec in assertions:
        try:
            checked.append(validate_assertion(spec))
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from None
    return {"input": input_value, "expected": expected, "variables": variables, "assertions": checked,
            "line": line}


def _json_cell(text: str, where: str, column: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where}: the {column!r} cell is not valid JSON ({exc.msg})") from None


# ---- suite configuration ----------------------------------------------------------------------


def check_config(config: dict[str, Any], where: str) -> dict[str, Any]:
    """The suite-level settings: prompt, judge, judge_model, threshold, models, assertions."""
    unknown = set(config) - _SIDECAR_KEYS - {"name", "format"}
    if unknown:
        raise InvalidInput(
            f"{where}: unknown suite setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_SIDECAR_KEYS))}"
        )
    out = {k: v for k, v in config.items() if k in _SIDECAR_KEYS}
    if "assertions" in out:
        specs = out["assertions"] if isinstance(out["assertions"], list) else [out["assertions"]]
        try:
            out["assertions"] = [validate_assertion(s) for s in specs]
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from None
    if "models" in out:
        models = out["models"]
        if isinstance(models, str):
            models = [m.strip() for m in models.split(",") if m.strip()]
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise InvalidInput(f"{where}: 'models' is a list of model names")
        out["models"] = models
    for key in ("threshold", "min_pass"):
        if key in out and (isinstance(out[key], bool) or not isinstance(out[key], int | float)):
            raise InvalidInput(f"{where}: {key!r} must be a number")
    if "check" in out and not isinstance(out["check"], bool):
        raise InvalidInput(f"{where}: 'check' is true or false")
    return out


def read_sidecar(path: Path) -> dict[str, Any]:
    from store.formats.common import FormatError, load_yaml

    from .judge import read_judge_file

    try:
        data = load_yaml(path.read_text(encoding="utf-8-sig"), path.name)
    except FormatError as exc:
        raise InvalidInput(str(exc)) from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path.name}: not UTF-8 text; save it as UTF-8") from None
    config = check_config(data, path.name)
    judge = config.get("judge")
    if isinstance(judge, str):
        # A path to a judge file (the guide's judge.json), relative to the sidecar.
        judge_path = (path.parent / judge).resolve()
        check_readable(judge_path, "a judge file", ("json",))
        if not judge_path.is_file():
            raise InvalidInput(f"{path.name}: judge file {judge!r} does not exist")
        config["judge"] = read_judge_file(str(judge_path))
    return config


def workspace_suite_files(root: Path) -> dict[str, Path]:
    """Suite name -> file, for the suites kept as files under tests/prompts/."""
    folder = root / SUITE_DIR
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower().lstrip(".") in FORMATS:
            found.setdefault(path.stem, path)
    return found


def sidecar_for(path: Path) -> Path | None:
    if is_prompt_yml(path):
        return None  # it is YAML itself, and its own settings
    for suffix in (".yml", ".yaml"):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None
