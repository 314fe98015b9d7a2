"""``migration-guard clean`` drops the cached base states and removes the warm local cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from guard.database import cache
from guard.database.server import Server
from tests.guardrun import run_guard
from tests.processes import processes_using

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]


def test_clean_drops_caches_on_the_url_server(shop: Path, pg_url: str,
                                              pg_server: Server) -> None:
    path = shop / "catalog/migrations/0001_initial.py"
    path.write_text(path.read_text() + f"\nCLEAN_TEST = {os.getpid()}\n")  # a base of its own
    run = run_guard("check", shop / "orders/migrations/0002_order_status.py", "--project-dir",
                    shop, "--db", pg_url)
    assert run.returncode == 0, run.stderr
    assert cache.cached(pg_server)
    cleaned = run_guard("clean", "--db", pg_url, "--project-dir", shop)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "dropped" in cleaned.stdout
    assert cache.cached(pg_server) == []


def test_clean_removes_the_warm_local_cluster(shop: Path, scratch: Path) -> None:
    env = {"MIGRATION_GUARD_CACHE_DIR": str(scratch / "cache"), "SHOP_DB_PORT": "1"}
    run = run_guard("check", shop / "orders/migrations/0002_order_status.py", "--project-dir",
                    shop, "--db", "local", env=env)
    assert run.returncode == 0, run.stderr
    clusters = list((scratch / "cache").glob("cluster-*"))
    assert clusters and all(processes_using(c) == [] for c in clusters)
    cleaned = run_guard("clean", "--db", "local", "--project-dir", shop, env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "removed the local cluster" in cleaned.stdout
    assert not [c for c in clusters if c.exists()]
