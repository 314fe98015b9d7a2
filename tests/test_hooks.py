"""The entry points where developers already are: the plain pre-push hook and pre-commit, each
through a real ``git push`` to a real bare remote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.gitproject import commit_all, git, make_repo, migration, setenv, state
from tests.guardrun import write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

BROKEN = migration(("orders", "0002_order_status"),
                   "ALTER TABLE orders_order ADD COLUMN note text",
                   "ALTER TABLE orders_order DROP COLUMN notes")
FIXED = migration(("orders", "0002_order_status"),
                  "ALTER TABLE orders_order ADD COLUMN note text",
                  "ALTER TABLE orders_order DROP COLUMN note")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> tuple[Path, Path]:
    setenv(monkeypatch, tmp_path)
    monkeypatch.setenv("MIGRATION_GUARD_DATABASE_URL", pg_url)
    return make_repo(tmp_path)


def push(work: Path, *refs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "push", "origin", *refs], cwd=work, capture_output=True,
                          text=True, timeout=600)


def guard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "guard", *args], cwd=cwd, capture_output=True,
                          text=True)


# -- the plain hook -----------------------------------------------------------------------------

def test_install_keeps_an_existing_hook_and_respects_core_hookspath(
    repo: tuple[Path, Path]
) -> None:
    work, _ = repo
    git(work, "config", "core.hooksPath", ".githooks")
    hooks = work / ".githooks"
    write(hooks / "pre-push", "#!/bin/sh\necho legacy ran >&2\n").chmod(0o755)
    done = guard("install", cwd=work / "orders")
    assert done.returncode == 0, done.stderr
    assert "migration-guard's git pre-push hook" in (hooks / "pre-push").read_text()
    assert (hooks / "pre-push.legacy").read_text() == "#!/bin/sh\necho legacy ran >&2\n"
    assert not (work / ".git/hooks/pre-push").exists()
    again = guard("install", cwd=work)
    assert again.returncode == 0 and "up to date" in again.stdout
    git(work, "checkout", "-q", "-b", "feature")
    write(work / "README.txt", "no python\n")
    commit_all(work, "docs")
    pushed = push(work, "feature")
    assert pushed.returncode == 0, pushed.stderr
    assert "legacy ran" in pushed.stderr


def test_plain_hook_refuses_a_broken_reverse_then_allows_the_fix(repo: tuple[Path, Path]) -> None:
    work, _ = repo
    assert guard("install", cwd=work).returncode == 0
    git(work, "checkout", "-q", "-b", "feature")
    write(work / "orders/migrations/0003_note.py", BROKEN)
    commit_all(work, "note")
    refused = push(work, "feature")
    assert refused.returncode != 0
    assert "push mode: refs/heads/feature -> refs/heads/feature" in refused.stderr
    assert "FAILED orders.0003_note: backward" in refused.stdout + refused.stderr
    assert git(work, "ls-remote", "origin", "feature") == ""
    write(work / "orders/migrations/0003_note.py", FIXED)
    commit_all(work, "fix the reverse")
    allowed = push(work, "feature")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "migration-guard passed: 1 of 1 migration(s) passed (push mode" in allowed.stdout


def test_plain_hook_tests_the_pushed_commit_not_the_working_tree(
    repo: tuple[Path, Path]
) -> None:
    work, _ = repo
    assert guard("install", cwd=work).returncode == 0
    git(work, "checkout", "-q", "-b", "feature")
    write(work / "orders/migrations/0003_note.py", BROKEN)
    commit_all(work, "note")
    git(work, "checkout", "-q", "main")
    models = work / "orders/models.py"
    models.write_text(models.read_text() + "# an unstaged edit on main\n")
    before = state(work)
    refused = push(work, "feature")
    assert refused.returncode != 0
    assert "FAILED orders.0003_note: backward" in refused.stdout + refused.stderr
    # The report names the file where it lives in the repository, not in the export.
    assert f"file: {work}/orders/migrations/0003_note.py" in refused.stdout
    assert state(work) == before


def test_plain_hook_handles_two_refs_in_one_push(repo: tuple[Path, Path]) -> None:
    work, _ = repo
    assert guard("install", cwd=work).returncode == 0
    git(work, "checkout", "-q", "-b", "one")
    write(work / "orders/migrations/0003_one.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    commit_all(work, "one")
    git(work, "checkout", "-q", "main")
    git(work, "checkout", "-q", "-b", "two")
    write(work / "catalog/migrations/0004_two.py",
          migration(("catalog", "0003_category"), "SELECT 2", "SELECT 2"))
    commit_all(work, "two")
    done = push(work, "one", "two")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "push mode: refs/heads/one -> refs/heads/one" in done.stderr
    assert "push mode: refs/heads/two -> refs/heads/two" in done.stderr
    assert "orders.0003_one  changed in the pushed commits" in done.stderr
    assert "catalog.0004_two  changed" in done.stderr


# -- pre-commit ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This checkout's files as a repository pre-commit can install the hook from."""
    target = tmp_path_factory.mktemp("hook-repo")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(source), target / name)
        elif source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["commit", "-q", "--no-gpg-sign", "-m", "hook"]):
        subprocess.run(["git", *args], cwd=target, env=env, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=target, capture_output=True,
                         text=True, check=True).stdout.strip()
    return target, sha


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def project_venv(work: Path) -> None:
    """The project's own virtualenv: Django from ours, plus a package only it has."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(work / ".venv")],
                   check=True)
    extras = work / ".venv" / "extras"
    write(extras / "shop_extras" / "__init__.py", "FLAG = True\n")
    site = subprocess.run(
        [str(work / ".venv/bin/python"), "-c",
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    write(Path(site) / "project.pth", f"{ours}\n{extras}\n")
    settings = work / "shop/settings.py"
    settings.write_text(settings.read_text() + "\nimport shop_extras  # only in .venv\n")


def no_venv_on_path() -> str:
    """PATH as in a shell where no virtualenv is activated (the project's is found as .venv)."""
    ours = str(Path(sys.executable).parent)
    return os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != ours)


def pre_commit(work: Path, *args: str, home: Path,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PRE_COMMIT_HOME": str(home), "PATH": no_venv_on_path(),
               **(env or {})}
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=work,
                          capture_output=True, text=True, env=environ, timeout=900)


def configure_pre_commit(work: Path, hook_repo: tuple[Path, str]) -> None:
    path, sha = hook_repo
    write(work / ".pre-commit-config.yaml",
          f"repos:\n  - repo: {path}\n    rev: {sha}\n    hooks:\n      - id: migration-guard\n")
    project_venv(work)
    commit_all(work, "pre-commit and the project's virtualenv")
    git(work, "push", "-q", "origin", "main")


def test_pre_commit_pre_push_refuses_then_allows(
    repo: tuple[Path, Path], hook_repo: tuple[Path, str], pre_commit_home: Path
) -> None:
    work, _ = repo
    configure_pre_commit(work, hook_repo)
    installed = pre_commit(work, "install", "--hook-type", "pre-push", home=pre_commit_home)
    assert installed.returncode == 0, installed.stderr
    git(work, "checkout", "-q", "-b", "feature")
    write(work / "orders/migrations/0003_note.py", BROKEN)
    commit_all(work, "note")
    environ = {**os.environ, "PRE_COMMIT_HOME": str(pre_commit_home),
               "PATH": no_venv_on_path()}
    refused = subprocess.run(["git", "push", "origin", "feature"], cwd=work, env=environ,
                             capture_output=True, text=True, timeout=900)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert "FAILED orders.0003_note: backward" in output, output
    assert f"running Django in {work}/.venv/bin/python (.venv in {work})" in output
    write(work / "orders/migrations/0003_note.py", FIXED)
    commit_all(work, "fix")
    allowed = subprocess.run(["git", "push", "origin", "feature"], cwd=work, env=environ,
                             capture_output=True, text=True, timeout=900)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


def test_pre_commit_run_all_files_in_ci_is_the_full_run(
    repo: tuple[Path, Path], hook_repo: tuple[Path, str], pre_commit_home: Path
) -> None:
    work, _ = repo
    configure_pre_commit(work, hook_repo)
    done = pre_commit(work, "run", "migration-guard", "--all-files", "--verbose",
                      home=pre_commit_home, env={"CI": "true"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "full mode: running in CI (CI=true" in output
    assert "migration-guard passed: 6 of 6 migration(s) passed (full mode" in output
