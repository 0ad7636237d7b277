"""The README is a test: every command block in it runs as written, in the workspace it says,
against the fake model server, and prints the output lines it shows.

How README.md marks its blocks (an HTML comment on the line before the fence, invisible on GitHub):

- `<!-- run in: new -->`: an empty folder (the block starts with `promstack init`);
- `<!-- run in: example -->`: the workspace `make run` makes (promstack.workspace.ensure_workspace:
  prompt 42, the regression suite, the judge);
- `<!-- run in: new, example -->`: each of them, one after the other;
- `<!-- run in: previous -->`: the folder the block before it ran in last, as that block left it
  (blocks run in README order, so a walkthrough split by prose stays one session);
- `<!-- not run: REASON -->`: a block that cannot run here (it serves forever, is a config
  file, installs from a registry); the reason is required.

A `console` block is `$ command` lines, each followed by the lines it prints (they must appear,
in order, in what it prints). Output is compared after one small normalisation: runs of spaces
count as one, timestamps (`2026-12-05 16:26:23`, `2026-12-05T16:26:23.123Z`) read `<time>`, and
`...` in a shown line stands for any text. A `sh`/`bash` block runs as one `bash -e` script, a
`python` block with the project's Python; each must exit 0. Models are routed to the fake server
with `OPENAI_API_BASE` (a base URL the server's own environment names is trusted with the key).

No first-steps walkthrough lives in docs/: the pages README links are references, their blocks
are configuration and excerpts.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest_plugins = ("test_evals_fake",)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
RUN_LANGS = {"console", "sh", "bash", "python"}
WHERE = {"new", "example", "previous"}
MARKER = re.compile(r"^<!--\s*(run in|not run):\s*(.*?)\s*-->$")
TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?")


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    kind: str | None = None  # "run in" | "not run" | None (unmarked)
    arg: str = ""
    where: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"README.md line {self.line} ({self.lang or 'no language'})"


def parse(path: Path = README) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^(```+)\s*([\w+-]*)", lines[i])
        if not fence:
            i += 1
            continue
        start, ticks = i, fence.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith(ticks):
            j += 1
        block = Block(line=start + 1, lang=fence.group(2).lower(), text="\n".join(lines[start + 1:j]) + "\n")
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = MARKER.match(lines[k].strip()) if k >= 0 else None
        if marker:
            block.kind, block.arg = marker.group(1), marker.group(2)
            if block.kind == "run in":
                block.where = [w.strip() for w in block.arg.split(",") if w.strip()]
        blocks.append(block)
        i = j + 1
    return blocks


def normalise(line: str) -> str:
    return " ".join(TIME.sub("<time>", line).split())


def shown_in(expected: list[str], actual: str) -> str | None:
    """None if every expected line matches a line of `actual`, in order; else the first that does not."""
    lines = [normalise(x) for x in actual.splitlines()]
    at = 0
    for want in expected:
        pattern = re.compile("^" + ".*".join(re.escape(p) for p in normalise(want).split("...")) + "$")
        while at < len(lines) and not pattern.match(lines[at]):
            at += 1
        if at == len(lines):
            return want
        at += 1
    return None


def console_steps(text: str) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps and line.strip():
            steps[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"a console block's first line is a command ($ ...), not {line!r}")
    return steps


# ---- the blocks are marked --------------------------------------------------------------------


def test_every_block_runs_or_says_why_not():
    blocks = parse()
    assert blocks, "README.md has no code blocks?"
    problems = []
    seen_run = False
    for b in blocks:
        if b.kind is None:
            problems.append(f"{b}: no <!-- run in: ... --> or <!-- not run: reason --> before it")
        elif b.kind == "not run" and len(b.arg) < 5:
            problems.append(f"{b}: 'not run' needs a reason")
        elif b.kind == "run in":
            if b.lang not in RUN_LANGS:
                problems.append(f"{b}: only {sorted(RUN_LANGS)} blocks run")
            if not b.where or set(b.where) - WHERE:
                problems.append(f"{b}: run in {b.arg!r}; use new, example, previous")
            if "previous" in b.where and (len(b.where) > 1 or not seen_run):
                problems.append(f"{b}: 'previous' needs a block run before it, alone")
            seen_run = True
    assert not problems, "\n".join(problems)
    assert sum(b.kind == "run in" for b in blocks) >= 4


def test_the_checker_catches_a_wrong_line():
    assert shown_in(["v2 ... kinder [latest]"], "v2    2026-12-05 16:26:23  main  alice  cli  kinder [latest]\n") is None
    assert shown_in(["v3 kinder"], "v2 kinder\n") == "v3 kinder"
    assert shown_in(["b", "a"], "a\nb\n") == "a"  # order counts


# ---- running them -----------------------------------------------------------------------------


@pytest.fixture
def readme_model(_scripted_server):
    """The fake server answering as a good model would (its judge scores what it reads)."""
    from test_evals_fake import respond

    def as_good(request):
        if "strict, fair evaluator" in str(request.get("messages")) or "compare two AI answers" in str(
                request.get("messages")):
            return respond({**request, "model": "judge"})
        return respond({**request, "model": "good"})

    _scripted_server.reset()
    _scripted_server.responder = as_good
    yield _scripted_server
    _scripted_server.reset()


class Session:
    """Folders the blocks run in, and the processes they leave in the background."""

    def __init__(self, tmp: Path, base_url: str):
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMSTACK_", "OPENAI_", "PROMPT_"))}
        self.env.update({
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(tmp / "home"),
            "PROMSTACK_USER": "alice", "OPENAI_API_BASE": base_url, "OPENAI_API_KEY": "test-readme-key",
            "COLUMNS": "200", "PYTHONUNBUFFERED": "1",
        })
        (tmp / "home").mkdir(exist_ok=True)
        self.count = 0
        self.current: Path | None = None
        self.groups: list[int] = []

    def folder(self, where: str) -> Path:
        if where == "previous":
            assert self.current is not None
            return self.current
        self.count += 1
        path = self.tmp / f"{where}-{self.count}"
        path.mkdir()
        if where == "example":
            made = subprocess.run(
                [sys.executable, "-c", "from promstack.workspace import ensure_workspace; ensure_workspace('.')"],
                cwd=path, env=self.env, capture_output=True, text=True, timeout=120,
            )
            assert made.returncode == 0, made.stderr
        self.current = path
        return path

    def run(self, script: str, cwd: Path, *, shell: list[str]) -> tuple[int, str]:
        out = cwd.parent / f"out-{self.count}-{len(self.groups)}.txt"
        with out.open("w", encoding="utf-8") as sink:
            # Its own session: what the block leaves running (`promstack watch &`) is killed after.
            proc = subprocess.Popen([*shell, script], cwd=cwd, env=self.env, stdout=sink, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            self.groups.append(proc.pid)
            try:
                code = proc.wait(timeout=180)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return code, out.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        for pgid in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)


def _console_script(steps: list[tuple[str, list[str]]]) -> str:
    parts = []
    for n, (command, _) in enumerate(steps):
        parts.append(f"echo '@@step {n}'\n{command}\necho \"@@rc {n} $?\"")
    return "\n".join(parts) + "\n"


def _check_console(block: Block, session: Session, cwd: Path) -> list[str]:
    steps = console_steps(block.text)
    _, out = session.run(_console_script(steps), cwd, shell=["bash", "-c"])
    problems = []
    for n, (command, expected) in enumerate(steps):
        found = re.search(rf"^@@step {n}\n(.*?)^@@rc {n} (\d+)$", out, re.S | re.M)
        if found is None:
            problems.append(f"{block}: `{command}` did not finish:\n{out[-2000:]}")
            break
        text, code = re.sub(r"^@@.*\n?", "", found.group(1), flags=re.M), int(found.group(2))
        if code != 0:
            problems.append(f"{block} in {cwd.name}: `{command}` exited {code}:\n{text}")
            continue
        missing = shown_in(expected, text)
        if missing is not None:
            problems.append(f"{block} in {cwd.name}: `{command}` did not print {missing!r}; it printed:\n{text}")
    return problems


def _check(block: Block, session: Session, cwd: Path) -> list[str]:
    if block.lang == "console":
        return _check_console(block, session, cwd)
    if block.lang == "python":
        code, out = session.run(block.text, cwd, shell=[sys.executable, "-c"])
    else:
        code, out = session.run(block.text, cwd, shell=["bash", "-e", "-c"])
    return [] if code == 0 else [f"{block} in {cwd.name} exited {code}:\n{out[-3000:]}"]


def test_every_block_runs_as_written(readme_model, tmp_path):
    session = Session(tmp_path, readme_model.base_url)
    problems: list[str] = []
    try:
        for block in parse():
            if block.kind != "run in":
                continue
            for where in block.where:
                problems += _check(block, session, session.folder(where))
    finally:
        session.close()
    assert not problems, "\n\n".join(problems)
    assert readme_model.requests, "no block reached the fake model server"
