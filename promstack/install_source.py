"""Where PromStack was installed from, as a pip requirement's URL a CI job can install it from
(PromStack is not on PyPI, so `pip install promstack` installs nothing, or someone else's).

Read from the installed distribution's PEP 610 record (`direct_url.json`, written by pip for a
direct URL install), through importlib.metadata:

    a VCS install (pip install git+URL@REV)     -> git+URL@REV (a version tag asked for), else @COMMIT
    an archive or wheel URL (https://.../x.whl)  -> that URL (with its #sha256= when recorded)
    an editable or local-directory install       -> when the directory is a git checkout whose
                                                    origin is a network remote (https or ssh):
                                                    git+ORIGIN@TAG (a tag at HEAD), else @COMMIT
    anything else (a local file, an index, no record)  -> None: the caller asks for --source

Only local git commands run (`remote get-url`, `tag --points-at`, `rev-parse`): nothing here
reaches the network. A URL's password or token is never kept (a CI file is no place for it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["PLACEHOLDER", "check", "chosen", "from_distribution", "from_git_checkout", "install_source",
           "network_remote"]

# What the workflow's `pip install` carries when no source is known: an address that cannot
# resolve (.invalid, RFC 2606), so a job that runs it fails on this line, saying what to set.
PLACEHOLDER = "git+https://set-the-source-with-promstack-ci-init.invalid/promstack"

_VERSION_TAG = re.compile(r"^v?\d+(\.\d+)+([-.]?[a-z0-9]+)*$", re.I)
_SCP_LIKE = re.compile(r"^(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>(?!/).+)$")


def chosen(given: str | None = None) -> str | None:
    """The source a workflow installs PromStack from: `given` (a face's option), else
    PROMSTACK_SOURCE, else how this copy was installed (`install_source`); None when unknown."""
    for found in (given, os.environ.get("PROMSTACK_SOURCE")):
        if found and found.strip():
            return check(found.strip())
    return install_source()


def check(source: str) -> str:
    """A source as the workflow's `pip install "promstack @ SOURCE"` can carry it."""
    from store.errors import InvalidInput

    if any(c.isspace() or c in "\"'`$" for c in source) or "://" not in source:
        raise InvalidInput(f"{source[:80]!r} is not a source pip installs PromStack from; give a URL such as "
                           "git+https://github.com/you/promstack@v0.1.0 or https://example.com/promstack-0.1.0-py3-none-any.whl")
    return source


def install_source(name: str = "promstack") -> str | None:
    """The requirement URL PromStack (distribution `name`) can be installed from again, or None."""
    try:
        found = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    return from_distribution(found)


def from_distribution(dist: metadata.Distribution) -> str | None:
    """The source of an installed distribution, read from its `direct_url.json` (PEP 610)."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None  # from an index, or an installer that keeps no record
    try:
        record: dict[str, Any] = json.loads(text)
    except ValueError:
        return None
    url = str(record.get("url") or "")
    if not url:
        return None
    if isinstance(record.get("vcs_info"), dict):
        vcs = record["vcs_info"]
        asked, commit = vcs.get("requested_revision"), vcs.get("commit_id")
        revision = asked if isinstance(asked, str) and _VERSION_TAG.match(asked) else commit
        base = _without_password(url)
        return f"{vcs.get('vcs', 'git')}+{base}@{revision}" if revision else f"{vcs.get('vcs', 'git')}+{base}"
    if isinstance(record.get("archive_info"), dict):
        if urlsplit(url).scheme not in ("http", "https"):
            return None  # a file on this machine: no CI job can reach it
        digest = _sha256(record["archive_info"])
        return _without_password(url) + (f"#sha256={digest}" if digest and "#" not in url else "")
    if isinstance(record.get("dir_info"), dict) and urlsplit(url).scheme == "file":
        return from_git_checkout(Path(unquote(urlsplit(url).path)))
    return None


def from_git_checkout(folder: Path) -> str | None:
    """git+ORIGIN@TAG-or-COMMIT for a checkout whose origin is a network remote, else None."""
    if not folder.is_dir():
        return None
    origin = _git(folder, "remote", "get-url", "origin")
    remote = network_remote(origin) if origin else None
    commit = _git(folder, "rev-parse", "HEAD")
    top = _git(folder, "rev-parse", "--show-toplevel")
    if remote is None or not commit or not top:
        return None
    tags = (_git(folder, "tag", "--points-at", "HEAD", "--sort=-v:refname") or "").split()
    inside = folder.resolve().relative_to(Path(top).resolve()).as_posix()
    # PromStack in a folder of a larger repository: pip builds it from there
    where = f"#subdirectory={inside}" if inside != "." else ""
    return f"git+{remote}@{tags[0] if tags else commit}{where}"


def network_remote(url: str) -> str | None:
    """A git remote pip can fetch from another machine (https, http, ssh, git), as pip spells it
    (`git@host:org/repo` becomes `ssh://git@host/org/repo`), without a password; None for a path
    or a file:// remote."""
    url = url.strip()
    scp = _SCP_LIKE.match(url)
    if scp and "://" not in url:
        return f"ssh://{scp['user']}@{scp['host']}/{scp['path']}"
    if urlsplit(url).scheme in ("https", "http", "ssh", "git"):
        return _without_password(url)
    return None


def _without_password(url: str) -> str:
    """The URL without what authenticates it: https credentials go entirely (a token is often the
    user name), an ssh URL keeps its user (git@), never a password."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    netloc = f"{user}@{host}" if parts.scheme == "ssh" and user else host
    return urlunsplit(parts._replace(netloc=netloc))


def _sha256(archive: dict[str, Any]) -> str | None:
    hashes = archive.get("hashes")
    if isinstance(hashes, dict) and isinstance(hashes.get("sha256"), str):
        return hashes["sha256"]
    legacy = archive.get("hash")  # the older single "sha256=..." field
    if isinstance(legacy, str) and legacy.startswith("sha256="):
        return legacy.split("=", 1)[1]
    return None


def _git(folder: Path, *args: str) -> str | None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                              env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
