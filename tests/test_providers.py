"""Each way of getting a PostgreSQL server, end to end through the real command."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.database.binaries import find_binaries
from guard.database.cachedir import CACHE_ENV
from guard.database.server import Server, connect, connect_maintenance
from tests.conftest import REPO
from tests.guardrun import run_guard
from tests.processes import processes_using
from tests.test_warm_cluster import run_databases_left

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

MIGRATION = "catalog/migrations/0003_category.py"


def settings_env(server: Server, name: str) -> dict[str, str]:
    return {
        "SHOP_DB_HOST": server.host,
        "SHOP_DB_PORT": str(server.port),
        "SHOP_DB_USER": server.user,
        "SHOP_DB_NAME": name,
    }


@pytest.fixture
def owned_database(pg_server: Server) -> Iterator[str]:
    """The project's own database, with a table and rows that must stay untouched."""
    from tests.conftest import register_test_database

    name = f"shop_own_{secrets.token_hex(4)}"
    register_test_database(name)
    admin = connect_maintenance(pg_server)
    admin.cursor().execute(f"CREATE DATABASE {name}")
    own = connect(pg_server, name)
    own.cursor().execute("CREATE TABLE precious (id int); INSERT INTO precious VALUES (1), (2)")
    own.close()
    try:
        yield name
    finally:
        admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def activity(server: Server, name: str) -> tuple[object, ...]:
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, "
            "tup_fetched FROM pg_stat_database WHERE datname = %s", (name,)
        )
        return tuple(cur.fetchone())
    finally:
        conn.close()


def rows(server: Server, name: str) -> list[tuple[object, ...]]:
    conn = connect(server, name)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        tables = sorted(r[0] for r in cur.fetchall())
        cur.execute("SELECT id FROM precious ORDER BY id")
        return [tuple(tables), *cur.fetchall()]
    finally:
        conn.close()


def test_url_from_the_environment(shop: Path, pg_url: str) -> None:
    run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--format", "json",
                    env={"MIGRATION_GUARD_DATABASE_URL": pg_url, "SHOP_DB_PORT": "1"})
    assert run.returncode == 0, run.stderr
    assert run.report["database"]["provider"] == "url"
    assert "MIGRATION_GUARD_DATABASE_URL" in run.report["database"]["reason"]


@pytest.mark.parametrize("spec", ["settings", "auto"])
def test_settings_server_leaves_the_projects_own_database_alone(
    shop: Path, pg_server: Server, owned_database: str, spec: str
) -> None:
    from tests.test_safety import settled

    before = rows(pg_server, owned_database)
    # Once rows()'s own session has ended and its counters have reached pg_stat_database
    # (under load that lags, and the comparison below caught it, not the tool).
    stats = settled(pg_server, owned_database)
    run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", spec,
                    "--format", "json", env=settings_env(pg_server, owned_database))
    assert run.returncode == 0, run.stderr
    assert run.report["database"]["provider"] == "settings"
    assert activity(pg_server, owned_database) == stats
    assert rows(pg_server, owned_database) == before == [("precious",), (1,), (2,)]


def local_env(scratch: Path) -> dict[str, str]:
    """The warm cluster's cache in ``scratch/cache``, the temporary folder ``scratch``."""
    return {"TMPDIR": str(scratch), CACHE_ENV: str(scratch / "cache")}


def test_local_cluster_is_started_and_stopped(shop: Path, scratch: Path) -> None:
    run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", "local",
                    "--format", "json", env=local_env(scratch))
    assert run.returncode == 0, run.stderr
    assert run.report["database"]["provider"] == "local"
    reason = run.report["database"]["reason"]
    assert f"local cluster from {find_binaries()} in {scratch / 'cache'}" in reason
    assert "(initialised now)" in reason
    # The server is stopped, the cluster kept in the cache, the run's database dropped.
    assert processes_using(scratch) == []
    assert [p.name for p in scratch.iterdir()] == ["cache"]
    assert run_databases_left(scratch / "cache") == []
    again = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", "local",
                      "--format", "json", env=local_env(scratch))
    assert again.returncode == 0, again.stderr
    assert again.report["database"]["reason"].endswith("(warm)")
    assert processes_using(scratch) == []


def test_auto_falls_back_to_local_when_the_settings_server_does_not_answer(
    shop: Path, scratch: Path
) -> None:
    run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--format", "json",
                    env={**local_env(scratch), "SHOP_DB_PORT": "1"})
    assert run.returncode == 0, run.stderr
    assert run.report["database"]["provider"] == "local"
    assert "127.0.0.1:1" in run.report["database"]["reason"]
    assert processes_using(scratch) == []
    assert [p.name for p in scratch.iterdir()] == ["cache"]
    assert run_databases_left(scratch / "cache") == []


def test_docker_through_a_stand_in_docker(shop: Path, scratch: Path) -> None:
    state = scratch / "docker-state"
    env = {
        "PATH": f"{REPO / 'tests/bin'}{os.pathsep}{os.environ['PATH']}",
        "FAKE_DOCKER_STATE": str(state),
    }
    run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", "docker",
                    "--format", "json", env=env)
    assert run.returncode == 0, run.stderr
    assert run.report["database"]["provider"] == "docker"
    calls = [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]
    verbs = [call[0] for call in calls]
    assert "run" in verbs and verbs[-1] == "rm"
    run_call = calls[verbs.index("run")]
    assert "postgres:15" in run_call
    assert any(arg.startswith("127.0.0.1:") and arg.endswith(":5432") for arg in run_call)
    assert list((state / "containers").iterdir()) == []
