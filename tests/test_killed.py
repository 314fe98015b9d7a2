"""A run killed with SIGKILL at any point leaves no database behind once the next run is done:
while its base is built, during the round trip, and after its verdict, while the process it
handed its databases to drops them and makes a spare."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from guard.database import cache, spares, throwaway
from guard.database.server import Server, connect_maintenance
from tests.conftest import settle
from tests.guardrun import run_guard
from tests.processes import processes_mentioning
from tests.test_reliability import SLEEP, sql_migration, start

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

MIGRATION = "orders/migrations/0002_order_status.py"


def ours(server: Server) -> set[str]:
    """Our databases that are neither cached bases nor spares."""
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'migration\\_guard\\_%'")
        return {row[0] for row in cur.fetchall()
                if not row[0].startswith((cache.CACHE_PREFIX, spares.PREFIX))}
    finally:
        conn.close()


def until(found: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not found():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def next_run_cleans_up(shop: Path, pg_url: str, pg_server: Server, pid: int) -> None:
    left = {name for name in ours(pg_server) if f"_{pid}_" in name}
    assert left, "the killed run left nothing to clean up: the test missed its moment"
    again = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", pg_url)
    assert again.returncode == 0, again.stderr
    assert "left by runs that were killed" in again.stderr
    settle(pg_server)
    assert not {name for name in ours(pg_server) if f"_{pid}_" in name}


def test_killed_while_its_base_is_built(shop: Path, pg_url: str, pg_server: Server) -> None:
    slow = sql_migration(shop, "catalog", "0004_slow", "0003_category", SLEEP, "SELECT 1")
    proc = start(shop, str(shop / MIGRATION), "--db", pg_url)
    until(lambda: any(n.startswith(f"{throwaway.PREFIX}build_") and f"_{proc.pid}_" in n
                      for n in ours(pg_server)))
    time.sleep(0.3)
    proc.kill()
    proc.communicate(timeout=30)
    slow.unlink()
    next_run_cleans_up(shop, pg_url, pg_server, proc.pid)


def test_killed_during_the_round_trip(shop: Path, pg_url: str, pg_server: Server) -> None:
    path = sql_migration(shop, "orders", "0003_hangs", "0002_order_status", SLEEP, "SELECT 1")
    proc = start(shop, str(path), "--db", pg_url)
    until(lambda: any(n.startswith(f"{throwaway.PREFIX}run_") and f"_{proc.pid}_" in n
                      for n in ours(pg_server)))
    time.sleep(1.0)  # the forward step is in its pg_sleep
    proc.kill()
    proc.communicate(timeout=30)
    path.unlink()
    next_run_cleans_up(shop, pg_url, pg_server, proc.pid)


def test_its_handoff_killed_after_the_verdict(shop: Path, pg_url: str,
                                              pg_server: Server) -> None:
    """The process that drops a run's databases and makes a spare, killed at once: what it
    was given (named after it) is the next run's to drop."""
    run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", pg_url)  # the base
    settle(pg_server)
    # A handoff that never gets to work: stopped before it reads its job, then killed.
    proc = start(shop, str(shop / MIGRATION), "--db", pg_url)
    handoffs: list[int] = []

    def caught() -> bool:
        handoffs.extend(processes_mentioning("guard.execution.handoff"))
        for pid in handoffs:
            subprocess.run(["kill", "-STOP", str(pid)], check=False)
        return bool(handoffs) or proc.poll() is not None

    until(caught)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert handoffs, "no handoff process was seen"
    for pid in handoffs:
        subprocess.run(["kill", "-KILL", str(pid)], check=False)
    time.sleep(0.2)
    left = set().union(*({n for n in ours(pg_server) if f"_{pid}_" in n} for pid in handoffs))
    if left:  # it had been given the run database (renamed after it) when it was stopped
        next_run_cleans_up(shop, pg_url, pg_server, next(iter(handoffs)))


def test_every_kind_of_database_a_dead_process_left_is_swept(pg_server: Server) -> None:
    pid = subprocess.Popen(["true"])
    pid.wait()
    names = [f"{throwaway.PREFIX}{purpose}_{throwaway.host_tag()}_{pid.pid}_0123abcd"
             for purpose in ("run", "build", "restore")]
    for name in names:
        throwaway.create_database(pg_server, name)
    try:
        swept = throwaway.sweep(pg_server)
        assert sorted(set(names) & set(swept)) == sorted(names)
        assert not set(names) & ours(pg_server)
    finally:
        for name in names:
            throwaway.drop_database(pg_server, name)
