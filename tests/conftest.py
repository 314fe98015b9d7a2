"""Fixtures shared by the suite: a real PostgreSQL server and a guard on everything else on it.

The server is, in order: ``MIGRATION_GUARD_TEST_DATABASE_URL``; the server on 127.0.0.1:5432 if
it answers (unless ``MIGRATION_GUARD_TEST_SERVER=local``); else a throwaway cluster started from
local PostgreSQL binaries for the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.database import cache, spares, throwaway
from guard.database.cache import CACHE_PREFIX
from guard.database.server import MAINTENANCE_DATABASES, Server, connect_maintenance, parse_url


def _server_answers(server: Server) -> bool:
    try:
        connect_maintenance(server).close()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    url = os.environ.get("MIGRATION_GUARD_TEST_DATABASE_URL")
    if url:
        yield parse_url(url)
        return
    default = Server(host="127.0.0.1", port=5432, user="postgres")
    if os.environ.get("MIGRATION_GUARD_TEST_SERVER") != "local" and _server_answers(default):
        yield default
        return
    import shutil
    import tempfile

    from guard.database import cluster

    # Not pytest's tmp_path: it is 0700, and as root the server runs as an unprivileged user.
    folder = tempfile.mkdtemp(prefix="mg-tests-")
    try:
        with cluster.LocalCluster.start(folder) as local:
            yield local.server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_server: Server) -> str:
    host = pg_server.host
    if host.startswith("/"):
        return f"postgres://{pg_server.user}@/postgres?host={host}&port={pg_server.port}"
    return f"postgres://{pg_server.user}@{host}:{pg_server.port}/postgres"


def _database_activity(server: Server) -> dict[str, tuple[int, ...]]:
    """Per database that is not ours: its commit/rollback/tuple counters."""
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute("SELECT current_setting('server_version_num')::int")
        if cur.fetchone()[0] >= 150000:  # older servers flush their statistics by themselves
            cur.execute("SELECT pg_stat_force_next_flush()")
        cur.execute(
            "SELECT datname, xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted"
            " FROM pg_stat_database WHERE datname IS NOT NULL"
        )
        return {
            row[0]: tuple(row[1:])
            for row in cur.fetchall()
            if not row[0].startswith(throwaway.PREFIX)
            and row[0] not in MAINTENANCE_DATABASES
            and row[0] not in _created_by_tests
        }
    finally:
        conn.close()


def _our_databases(server: Server) -> set[str]:
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'migration\\_guard\\_%'")
        return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


_created_by_tests: set[str] = set()


def register_test_database(name: str) -> None:
    """A database a test made itself (and drops itself): the guard leaves it alone."""
    _created_by_tests.add(name)


@pytest.fixture
def db_guard(pg_server: Server) -> Iterator[None]:
    """Fail the test if it touched any database it or the tool did not create, or left one."""
    before_ours = _our_databases(pg_server)
    before = _database_activity(pg_server)
    yield
    after = _database_activity(pg_server)
    touched = sorted(
        name for name, counters in after.items() if before.get(name, counters) != counters
    )
    assert not touched, f"databases touched that the test did not create: {touched}"
    left = {
        name for name in _our_databases(pg_server) - before_ours
        # Cached base states and their spares are meant to outlive a run; the session drops
        # them at its end. A run's handoff process drops what it was given while it lives.
        if not name.startswith((CACHE_PREFIX, spares.PREFIX)) and not _owner_alive(name)
    }
    assert not left, f"databases left behind: {sorted(left)}"


def _owner_alive(name: str) -> bool:
    """Whether the process named in ``migration_guard_<purpose>_<pid>_<hex>`` still runs (a
    concurrent run on the same server, not a leftover of this test)."""
    from tests.processes import process_gone

    parts = name.split("_")
    try:
        pid = int(parts[-2])
    except (IndexError, ValueError):
        return False
    return not process_gone(pid)


REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A copy of the example project to add scenario migrations to."""
    import shutil

    target = tmp_path / "shop"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A TMPDIR that the unprivileged user of a local cluster can enter (pytest's are 0700)."""
    import subprocess
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="mg-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture(scope="session", autouse=True)
def _drop_caches_made_by_the_session(pg_server: Server) -> Iterator[None]:
    """The cached base states the tests built on the shared server go when the session ends."""
    before = {name for name, _ in cache.cached(pg_server)} | _spares(pg_server)
    yield
    settle(pg_server)
    for name in [name for name, _ in cache.cached(pg_server)] + sorted(_spares(pg_server)):
        if name not in before:
            throwaway.drop_database(pg_server, name)


def _spares(server: Server) -> set[str]:
    return {name for name in _our_databases(server) if name.startswith(spares.PREFIX)}


def settle(server: Server, timeout: float = 30.0) -> None:
    """Wait until no live process of a run still works on the server (a handoff dropping a
    run's databases and making a spare after its verdict)."""
    import time

    from tests.processes import processes_mentioning

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [name for name in _our_databases(server)
                if not name.startswith((CACHE_PREFIX, spares.PREFIX)) and _owner_alive(name)]
        if not busy and not processes_mentioning("guard.execution.handoff"):
            return
        time.sleep(0.05)


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir() -> Iterator[None]:
    """Runs of the tool under test keep their warm cluster in a cache folder of the session's,
    never in this machine's real one; the session removes it at the end."""
    import shutil
    import tempfile

    if os.environ.get("MIGRATION_GUARD_CACHE_DIR"):
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="mg-cache-"))
    folder.chmod(0o755)
    os.environ["MIGRATION_GUARD_CACHE_DIR"] = str(folder)
    try:
        yield
    finally:
        from guard.database import cachedir

        cachedir.remove_warm_clusters(folder)
        del os.environ["MIGRATION_GUARD_CACHE_DIR"]
        shutil.rmtree(folder, ignore_errors=True)
