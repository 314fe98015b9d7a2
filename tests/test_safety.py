"""What migration-guard must never touch, whatever the mode: the project's own database (its
tables, rows and even its activity counters) and the developer's repository (working tree,
refs, stashes, configuration); and a settings server on another machine is only ever used when
asked for by name."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from guard.database.server import Server, connect_maintenance
from tests.gitproject import commit_all, git, make_repo, migration, setenv, state
from tests.guardrun import Run, run_guard, write
from tests.processes import processes_using
from tests.test_providers import activity, owned_database, rows, settings_env
from tests.test_warm_cluster import run_databases_left

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

__all__ = ["owned_database"]  # the fixture, used by name

NOTE = "orders/migrations/0003_note.py"
PRECIOUS = [("precious",), (1,), (2,)]
"""The project's own database: one table (no django_migrations) with its two rows."""


def settled(server: Server, name: str) -> tuple[object, ...]:
    """The counters of ``name`` once no session is connected to it and they stand still (a
    session's counters reach pg_stat_database when it ends, shortly after it disconnects)."""
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        deadline = time.monotonic() + 10
        while True:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,))
            if cur.fetchone()[0] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        conn.close()
    last = activity(server, name)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = activity(server, name)
        if now == last:
            return now
        last = now
    return last


def push(work: Path, env: dict[str, str], *refs: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "MIGRATION_GUARD_DATABASE_URL"}
    return subprocess.run(["git", "push", "origin", *refs], cwd=work, capture_output=True,
                          text=True, timeout=600, env={**environ, **env})


@pytest.mark.parametrize("spec", ["settings", "auto"])
def test_every_mode_leaves_the_projects_database_and_the_repository_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_server: Server, owned_database: str,
    spec: str,
) -> None:
    setenv(monkeypatch, tmp_path)
    monkeypatch.delenv("MIGRATION_GUARD_DATABASE_URL", raising=False)
    work, _ = make_repo(tmp_path)
    env = settings_env(pg_server, owned_database)
    git(work, "checkout", "-q", "-b", "feature")
    # The plain hook has no --db: it reads the provider from the project's configuration.
    write(work / "pyproject.toml", f'[tool.migration-guard]\ndb = "{spec}"\n')
    write(work / NOTE, migration(("orders", "0002_order_status"),
                                 "ALTER TABLE orders_order ADD COLUMN note text",
                                 "ALTER TABLE orders_order DROP COLUMN note"))
    head = commit_all(work, "note")
    # Untracked and unstaged work, and a stash, that every mode must leave as they are.
    write(work / "scratch.txt", "work in progress\n")
    readme = write(work / "NOTES.md", "stashed\n")
    git(work, "add", "NOTES.md")
    git(work, "stash", "-q")
    assert not readme.exists()
    git(work, "config", "--local", "user.name", "Dev")
    installed = subprocess.run([sys.executable, "-m", "guard", "install"], cwd=work,
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    assert rows(pg_server, owned_database) == PRECIOUS

    def untouched(what: str, action: Callable[[], str]) -> None:
        counters = settled(pg_server, owned_database)
        before = state(work)
        output = action()
        assert "Traceback" not in output, f"{what}: {output}"
        assert f"database: settings: DATABASES['default'] server {pg_server.describe()}" \
            in output, f"{what}: {output}"
        assert settled(pg_server, owned_database) == counters, what
        assert rows(pg_server, owned_database) == PRECIOUS, what
        after = state(work)
        if what == "push mode":
            # git itself records what the remote now has; nothing else changes.
            assert (after[0], after[2], after[3]) == (before[0], before[2], before[3]), what
            added = set(after[1].splitlines()) - set(before[1].splitlines())
            assert added == {f"{head} refs/remotes/origin/feature"}, what
            assert set(before[1].splitlines()) <= set(after[1].splitlines()), what
        else:
            assert after == before, what

    def check(*args: str | Path) -> str:
        run = run_guard("check", *args, "--db", spec, "--format", "json", cwd=work, env=env)
        assert run.returncode == 0, run.stderr
        assert run.report["database"]["provider"] == "settings"
        assert run.selection() != []
        return run.stderr

    def hook() -> str:
        pushed = push(work, env, "feature")
        assert pushed.returncode == 0, pushed.stderr
        assert "push mode: refs/heads/feature -> refs/heads/feature" in pushed.stderr
        assert "orders.0003_note" in pushed.stderr
        return pushed.stdout + pushed.stderr

    untouched("paths mode", lambda: check(work / NOTE))
    untouched("full mode", lambda: check("--full", "--last", "1"))
    untouched("branch mode", lambda: check())
    untouched("push mode", hook)
    assert git(work, "ls-remote", "origin", "feature").split()[0] == head


REMOTE_HOST = "db.example.invalid"
"""A name that never resolves (RFC 2606): the run can only fail to find it, never reach it."""


def test_a_settings_server_on_another_machine_is_only_used_when_named(
    shop: Path, scratch: Path
) -> None:
    env = {"SHOP_DB_HOST": REMOTE_HOST, "TMPDIR": str(scratch),
           "MIGRATION_GUARD_CACHE_DIR": str(scratch / "cache")}
    path = shop / "catalog/migrations/0003_category.py"
    auto: Run = run_guard("check", path, "--project-dir", shop, "--format", "json", env=env)
    assert auto.returncode == 0, auto.stderr
    assert "Traceback" not in auto.stderr
    assert auto.report["database"]["provider"] == "local"
    assert (f"the settings' server postgres@{REMOTE_HOST}:5432 is not on this machine (use "
            "--db settings or a URL to allow it)") in auto.report["database"]["reason"]
    assert processes_using(scratch) == []
    assert run_databases_left(scratch / "cache") == []

    named = run_guard("check", path, "--project-dir", shop, "--db", "settings", env=env)
    assert named.returncode == 2, named.stderr
    assert "Traceback" not in named.stderr
    errors = [line for line in named.stderr.splitlines()
              if line.startswith("migration-guard: error:")]
    assert len(errors) == 1, named.stderr
    assert (f"--db settings: cannot use the server of DATABASES['default'] "
            f"(postgres@{REMOTE_HOST}:5432): ") in errors[0]
    assert f'could not translate host name "{REMOTE_HOST}" to address' in errors[0]
