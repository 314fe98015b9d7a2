"""Real git repositories around a copy of the example project, for the git-aware tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLE

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "LANG": "C.UTF-8",
}


def git(cwd: Path, *args: str, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, capture_output=True, text=True, input=stdin, check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout.strip()


def commit_all(cwd: Path, message: str) -> str:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "--no-gpg-sign", "-m", message)
    return git(cwd, "rev-parse", "HEAD")


def make_repo(tmp_path: Path, name: str = "work") -> tuple[Path, Path]:
    """(work tree ``tmp_path/name`` with the example project committed on main and pushed, bare
    origin)."""
    origin = tmp_path / "origin.git"
    work = tmp_path / name
    git(tmp_path, "init", "-q", "--bare", str(origin))
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("__pycache__"))
    (work / ".gitignore").write_text("__pycache__/\n.venv/\n")
    git(work, "init", "-q", "-b", "main")
    git(work, "remote", "add", "origin", str(origin))
    commit_all(work, "the shop")
    git(work, "push", "-q", "-u", "origin", "main")
    git(work, "remote", "set-head", "origin", "main")
    return work, origin


def state(work: Path) -> tuple[str, str, str, str]:
    """What must not change: status, refs, stashes and the repository's own configuration."""
    return (
        git(work, "status", "--porcelain", "--untracked-files=all"),
        git(work, "show-ref"),
        git(work, "stash", "list"),
        git(work, "config", "--list", "--local"),
    )


def migration(depends_on: tuple[str, str], sql: str, reverse: str) -> str:
    return (
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [{depends_on!r}]\n\n"
        f"    operations = [migrations.RunSQL({sql!r}, reverse_sql={reverse!r})]\n"
    )


def setenv(monkeypatch: object, home: Path) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HOME", str(home))
    for key in ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI", "JENKINS_URL",
                "TF_BUILD", "TRAVIS", "PRE_COMMIT", "PRE_COMMIT_FROM_REF", "PRE_COMMIT_TO_REF",
                "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE"):
        monkeypatch.delenv(key, raising=False)
    # The tool's own interpreter must be the one found: nothing else activated on PATH.
    monkeypatch.setenv("PATH", os.pathsep.join(
        [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]))
