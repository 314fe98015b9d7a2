"""Cached base states: reused while their key holds, rebuilt when it does not, shared safely."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from guard.database import cache
from guard.database.server import Server
from tests.guardrun import Run, run_guard, write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

MIGRATION = "orders/migrations/0002_order_status.py"


def unique(shop: Path) -> str:
    """Make this project's base unlike any other test's, so that its cache key is its own: a
    statement, not a comment, since a base is also found by what its migrations mean."""
    token = secrets.token_hex(6)
    path = shop / "catalog/migrations/0001_initial.py"
    path.write_text(path.read_text() + f"\nMIGRATION_GUARD_TEST = {token!r}\n")
    return token


def check(shop: Path, pg_url: str) -> Run:
    run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", pg_url,
                    "--format", "json")
    assert run.returncode == 0, run.stderr
    return run


def caches(server: Server) -> set[str]:
    return {name for name, _ in cache.cached(server)}


def test_second_run_clones_the_cached_base(shop: Path, pg_url: str, pg_server: Server) -> None:
    unique(shop)
    before = caches(pg_server)
    first = check(shop, pg_url)
    assert first.report["base"]["cached"] is False
    made = caches(pg_server) - before
    assert len(made) == 2  # the base a run clones, and its rows-free parent
    second = check(shop, pg_url)
    assert second.report["base"]["cached"] is True
    assert second.report["base"]["migrations"] == first.report["base"]["migrations"] == 19
    assert "cached" in second.stderr
    assert caches(pg_server) - before == made


def test_a_changed_base_migration_never_reuses_the_stale_cache(
    shop: Path, pg_url: str, pg_server: Server
) -> None:
    unique(shop)
    check(shop, pg_url)
    # Change what catalog.0003 (in the base of orders.0002) does: the cache must not be reused.
    path = shop / "catalog/migrations/0003_category.py"
    path.write_text(path.read_text().replace(
        "max_length=100, unique=True", "max_length=120, unique=True"))
    models = shop / "catalog/models.py"
    models.write_text(models.read_text().replace(
        "max_length=100, unique=True", "max_length=120, unique=True"))
    rebuilt = check(shop, pg_url)
    assert rebuilt.report["base"]["cached"] is False
    # Only catalog.0001 and 0002 are still the same: no cached base holds just those.
    assert rebuilt.report["base"]["reused"] == 0


def test_a_change_in_code_a_base_migration_imports_changes_the_key(
    shop: Path, pg_url: str
) -> None:
    unique(shop)
    write(shop / "catalog/helpers.py", "PREFIX = 'SKU-'\n")
    path = shop / "catalog/migrations/0002_product_sku.py"
    path.write_text("from catalog.helpers import PREFIX  # noqa: F401\n" + path.read_text())
    assert check(shop, pg_url).report["base"]["cached"] is False
    assert check(shop, pg_url).report["base"]["cached"] is True
    write(shop / "catalog/helpers.py", "PREFIX = 'ART-'\n")
    assert check(shop, pg_url).report["base"]["cached"] is False


def test_two_runs_at_once_build_the_cache_once(shop: Path, pg_url: str,
                                               pg_server: Server) -> None:
    unique(shop)
    before = caches(pg_server)
    command = [sys.executable, "-m", "guard", "check", str(shop / MIGRATION), "--project-dir",
               str(shop), "--db", pg_url, "--format", "json"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    import json

    cached = sorted(json.loads(out)["base"]["cached"] for out, _ in outputs)
    assert cached == [False, True]
    assert len(caches(pg_server) - before) == 2


def test_the_number_of_caches_is_bounded(shop: Path, pg_url: str, pg_server: Server) -> None:
    write(shop / "pyproject.toml", "[tool.migration-guard]\ncache_size = 2\n")
    made = []
    for _ in range(3):
        token = unique(shop)
        before = caches(pg_server)
        check(shop, pg_url)
        made.append(caches(pg_server) - before)
        assert token and len(made[-1]) == 2
    remaining = caches(pg_server)
    assert not made[0] & remaining
    assert made[1] <= remaining and made[2] <= remaining
    assert len(remaining) <= 4  # two bases, each with its rows-free parent


def test_a_cache_dropped_after_it_was_seen_is_built_again(pg_server: Server) -> None:
    """A concurrent run may evict the cache (or ``clean`` drop it) between the look-up and the
    stamp: that is a miss, not a crash (it was exit 3 once, with two test runs on one server)."""
    from guard.database import bases, throwaway
    from guard.database.server import connect_maintenance

    conn = connect_maintenance(pg_server)
    try:
        gone = f"{cache.CACHE_PREFIX}gone_{secrets.token_hex(4)}"
        assert cache.touch(conn.cursor(), gone) is False
    finally:
        conn.close()
    built: list[str] = []
    wanted = bases.Wanted({"app.0001_initial": "digest"}, f"test_{secrets.token_hex(6)}", None)
    found = bases.ensure(pg_server, wanted, lambda n, done: built.append(n) or True,
                         lambda n: {}, keep=50)
    assert found is not None
    try:
        assert (found.cached, len(built)) == (False, 1)
        again = bases.ensure(pg_server, wanted, lambda n, done: False, lambda n: None, keep=50)
        assert again == bases.Base(found.name, cached=True)
    finally:
        throwaway.drop_database(pg_server, found.name)
