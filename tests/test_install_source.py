"""Where `promstack ci init`'s workflow installs PromStack from: read from the installed copy's
PEP 610 record (direct_url.json), here fabricated dist-info folders and temporary git
repositories (no network: git only reads them)."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from promstack import install_source as source
from promstack.cli import cli

COMMIT = "4f2c" * 10


def installed(tmp_path: Path, record: dict | None) -> metadata.Distribution:
    """A distribution as pip leaves it: METADATA, and direct_url.json when `record` is given."""
    info = tmp_path / "site" / "promstack-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: promstack\nVersion: 0.1.0\n", encoding="utf-8")
    if record is not None:
        (info / "direct_url.json").write_text(json.dumps(record), encoding="utf-8")
    return metadata.PathDistribution(info)


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    """A git checkout of PromStack with one commit (its origin set by each test)."""
    repo = tmp_path / "promstack"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "pyproject.toml").write_text("[project]\nname = 'promstack'\n", encoding="utf-8")
    git(repo, "add", "pyproject.toml")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def editable(tmp_path: Path, folder: Path) -> metadata.Distribution:
    return installed(tmp_path, {"url": folder.as_uri(), "dir_info": {"editable": True}})


def test_a_vcs_install_pins_its_tag_or_its_commit(tmp_path):
    tagged = installed(tmp_path / "a", {"url": "https://github.com/acme/promstack.git", "vcs_info": {
        "vcs": "git", "requested_revision": "v1.2.0", "commit_id": COMMIT}})
    assert source.from_distribution(tagged) == "git+https://github.com/acme/promstack.git@v1.2.0"
    branch = installed(tmp_path / "b", {"url": "https://github.com/acme/promstack.git", "vcs_info": {
        "vcs": "git", "requested_revision": "main", "commit_id": COMMIT}})
    assert source.from_distribution(branch) == f"git+https://github.com/acme/promstack.git@{COMMIT}"
    secret = installed(tmp_path / "c", {"url": "https://ghp_secret123@github.com/acme/promstack.git", "vcs_info": {
        "vcs": "git", "commit_id": COMMIT}})
    found = source.from_distribution(secret)
    assert found == f"git+https://github.com/acme/promstack.git@{COMMIT}" and "ghp_secret123" not in found


def test_an_archive_url_is_kept_with_its_hash(tmp_path):
    wheel = "https://files.example.com/promstack-0.1.0-py3-none-any.whl"
    hashed = installed(tmp_path / "a", {"url": wheel, "archive_info": {"hashes": {"sha256": "ab" * 32}}})
    assert source.from_distribution(hashed) == f"{wheel}#sha256={'ab' * 32}"
    legacy = installed(tmp_path / "b", {"url": wheel, "archive_info": {"hash": "sha256=" + "cd" * 32}})
    assert source.from_distribution(legacy) == f"{wheel}#sha256={'cd' * 32}"
    bare = installed(tmp_path / "c", {"url": wheel, "archive_info": {}})
    assert source.from_distribution(bare) == wheel
    local_file = installed(tmp_path / "d", {"url": (tmp_path / "x.whl").as_uri(), "archive_info": {}})
    assert source.from_distribution(local_file) is None  # on this machine only: no CI job reaches it


def test_an_editable_checkout_installs_from_its_origin(tmp_path, checkout):
    head = git(checkout, "rev-parse", "HEAD")
    dist = editable(tmp_path, checkout)
    assert source.from_distribution(dist) is None  # no origin yet
    git(checkout, "remote", "add", "origin", "https://github.com/acme/promstack.git")
    assert source.from_distribution(dist) == f"git+https://github.com/acme/promstack.git@{head}"
    git(checkout, "tag", "v0.9.0")
    git(checkout, "tag", "v0.10.0")
    assert source.from_distribution(dist) == "git+https://github.com/acme/promstack.git@v0.10.0"
    git(checkout, "remote", "set-url", "origin", "git@github.com:acme/promstack.git")
    assert source.from_distribution(dist) == "git+ssh://git@github.com/acme/promstack.git@v0.10.0"
    git(checkout, "remote", "set-url", "origin", "https://user:hunter2@git.example.com/acme/promstack.git")
    assert source.from_distribution(dist) == "git+https://git.example.com/acme/promstack.git@v0.10.0"


def test_a_checkout_without_a_network_remote_is_unknown(tmp_path, checkout):
    git(checkout, "remote", "add", "origin", str(tmp_path / "elsewhere.git"))
    assert source.from_distribution(editable(tmp_path / "a", checkout)) is None
    git(checkout, "remote", "set-url", "origin", (tmp_path / "elsewhere.git").as_uri())
    assert source.from_distribution(editable(tmp_path / "b", checkout)) is None
    plain = tmp_path / "not-a-repository"
    plain.mkdir()
    assert source.from_distribution(editable(tmp_path / "c", plain)) is None
    assert source.from_distribution(installed(tmp_path / "d", None)) is None  # from an index: no record


def test_promstack_in_a_folder_of_a_larger_repository(tmp_path, checkout):
    inner = checkout / "tools" / "promstack"
    inner.mkdir(parents=True)
    git(checkout, "remote", "add", "origin", "https://github.com/acme/mono.git")
    head = git(checkout, "rev-parse", "HEAD")
    assert source.from_distribution(editable(tmp_path, inner)) == (
        f"git+https://github.com/acme/mono.git@{head}#subdirectory=tools/promstack")


# ---- promstack ci init ------------------------------------------------------------------------


def install_line(folder: Path) -> str:
    workflow = yaml.safe_load((folder / ".github" / "workflows" / "prompts.yml").read_text(encoding="utf-8"))
    lines = [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "pip install" in s.get("run", "")]
    assert len(set(lines)) == 1 and len(lines) == 2  # the test job's and the deploy job's, alike
    return lines[0]


@pytest.fixture
def installed_as(monkeypatch, tmp_path):
    """Make `promstack` look installed from the record given (None: no record)."""
    monkeypatch.delenv("PROMSTACK_SOURCE", raising=False)

    def install(record: dict | None) -> None:
        dist = installed(tmp_path / f"dist{len(list(tmp_path.glob('dist*')))}", record)
        monkeypatch.setattr(source.metadata, "distribution", lambda name: dist)

    return install


def test_ci_init_writes_where_promstack_came_from(installed_as, tmp_path, checkout):
    git(checkout, "remote", "add", "origin", "https://github.com/acme/promstack.git")
    git(checkout, "tag", "v0.3.0")
    installed_as({"url": checkout.as_uri(), "dir_info": {"editable": True}})
    done = CliRunner().invoke(cli, ["ci", "init", "--dir", str(tmp_path / "repo")])
    assert done.exit_code == 0 and "placeholder" not in done.output, done.output
    assert install_line(tmp_path / "repo") == 'pip install "promstack @ git+https://github.com/acme/promstack.git@v0.3.0"'


def test_ci_init_with_nothing_known_writes_a_marked_placeholder(installed_as, tmp_path, monkeypatch):
    installed_as(None)
    done = CliRunner().invoke(cli, ["ci", "init", "--dir", str(tmp_path / "repo")])
    assert done.exit_code == 0
    warning = [line for line in done.stderr.splitlines() if "placeholder" in line]
    assert len(warning) == 1 and "--source" in warning[0]
    assert source.PLACEHOLDER in install_line(tmp_path / "repo")
    assert "# PLACEHOLDER" in (tmp_path / "repo" / ".github" / "workflows" / "prompts.yml").read_text(encoding="utf-8")
    wheel = "https://files.example.com/promstack-0.1.0-py3-none-any.whl"
    monkeypatch.setenv("PROMSTACK_SOURCE", wheel)
    assert CliRunner().invoke(cli, ["ci", "init", "--dir", str(tmp_path / "repo"), "--force"]).exit_code == 0
    assert install_line(tmp_path / "repo") == f'pip install "promstack @ {wheel}"'
    given = "git+https://github.com/me/promstack@v2.0.0"
    assert CliRunner().invoke(cli, ["ci", "init", "--dir", str(tmp_path / "repo"), "--force", "--local",
                                    "--source", given]).exit_code == 0
    assert install_line(tmp_path / "repo") == f'pip install "promstack @ {given}"'
    bad = CliRunner().invoke(cli, ["ci", "init", "--dir", str(tmp_path / "repo"), "--force", "--source", "pip me"])
    assert bad.exit_code == 2 and "is not a source pip installs PromStack from" in bad.output
