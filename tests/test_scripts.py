"""The scripts `make test` runs install system packages as root or through sudo, never assuming
root (scripts/lib.sh's as_root); the README states what they install."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))


def _commands(path: Path) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        if code.strip():
            out.append((n, code))
    return out


def test_every_apt_get_runs_as_root_or_through_sudo():
    bare = []
    for path in SCRIPTS:
        for n, code in _commands(path):
            if "apt-get" not in code or re.search(r"command -v apt-get|echo ", code):
                continue
            if "as_root" not in code:
                bare.append(f"scripts/{path.name}:{n}: {code.strip()}")
    assert not bare, "apt-get without as_root (scripts/lib.sh):\n" + "\n".join(bare)


def test_every_script_that_installs_uses_the_shared_helper():
    for path in SCRIPTS:
        text = path.read_text(encoding="utf-8")
        if path.name != "lib.sh" and "apt_install" in text:
            assert re.search(r'^\s*\. "\$.*lib\.sh"', text, re.M), f"{path.name} uses apt_install without lib.sh"


def test_as_root_goes_through_sudo_when_not_root(tmp_path):
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "id").write_text("#!/bin/sh\necho 1000\n")
    (stubs / "sudo").write_text('#!/bin/sh\necho "sudo $*"\n')
    (stubs / "apt-get").write_text('#!/bin/sh\necho "apt-get $*"\n')
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    script = f'. "{ROOT}/scripts/lib.sh"; as_root apt-get update; apt_install redis-server >/dev/null; echo ok'
    out = subprocess.run(["sh", "-c", script], env={"PATH": f"{stubs}:/usr/bin:/bin"}, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["sudo -n apt-get update", "ok"]


def test_the_readme_states_what_make_test_installs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What `make test` installs", 1)[1].split("\n## ", 1)[0]
    packages = set()
    for path in SCRIPTS:
        text = path.read_text(encoding="utf-8")
        packages |= set(re.findall(r'need(?:_apt)?="(?:\$\w+ )?([a-z0-9][a-z0-9.+-]+)"', text))
        packages |= set(re.findall(r"apt_install ([a-z][a-z0-9.+-]+)", text))
    assert {"redis-server", "chromium", "fonts-nanum", "libkrb5-dev"} <= packages
    for name in packages:
        assert f"`{name}`" in section, f"the README does not name {name}, which make test installs"
    for needed in ("code-server", "Node 24", "sudo", "PROMSTACK_SKIP_E2E"):
        assert needed in section, needed
