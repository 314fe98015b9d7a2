"""Spare clones: made after a run's verdict, taken by the next run, and judged the same."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from guard.database import spares
from guard.database.server import Server, connect_maintenance
from tests.conftest import settle
from tests.guardrun import Run, run_guard, write
from tests.test_cache import unique

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

MIGRATION = "orders/migrations/0002_order_status.py"

# Their rollbacks do not put back what their forwards did: a warning on the rows, a schema
# difference.
LOSES_ROWS = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status")]

    operations = [
        migrations.RunSQL("UPDATE orders_order SET status = 'x'", migrations.RunSQL.noop),
    ]
'''
LEAVES_A_TABLE = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status")]

    operations = [migrations.RunSQL("CREATE TABLE orders_left (id int)", migrations.RunSQL.noop)]
'''


def spare_names(server: Server) -> list[str]:
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                    (spares.PREFIX.replace("_", "\\_") + "%",))
        return sorted(row[0] for row in cur.fetchall())
    finally:
        conn.close()


def check(shop: Path, pg_url: str, *paths: Path) -> Run:
    return run_guard("check", *(paths or (shop / MIGRATION,)), "--project-dir", shop,
                     "--db", pg_url, "--format", "json")


def how_made(run: Run) -> str:
    return next(p["detail"] for p in run.report["timings"] if p["name"] == "database")


def verdict(run: Run) -> list[tuple[str, str, object, object, object]]:
    return [(r["migration"], s["step"], s["ok"], s.get("schema_diff"), s.get("rows_lost"))
            for r in run.report["results"] for s in r["steps"]]


@pytest.mark.parametrize(("name", "text", "code"), [
    ("0003_loses_rows", LOSES_ROWS, 0),  # a warning
    ("0003_leaves_a_table", LEAVES_A_TABLE, 1),
])
def test_the_next_run_takes_the_spare_and_judges_the_same(
    shop: Path, pg_url: str, pg_server: Server, name: str, text: str, code: int
) -> None:
    unique(shop)
    path = write(shop / f"orders/migrations/{name}.py", text)
    settle(pg_server)  # an earlier test's handoff may still be making its spare
    before = set(spare_names(pg_server))
    first = check(shop, pg_url, path)
    assert first.returncode == code, first.stderr
    assert how_made(first) == "waiting for the run's database; cloned"
    settle(pg_server)
    made = set(spare_names(pg_server)) - before
    assert len(made) == 1
    second = check(shop, pg_url, path)
    assert second.returncode == code, second.stderr
    assert how_made(second) == "waiting for the run's database; a spare clone"
    # What the spare said it held is what the clone was read to hold: the same verdict.
    assert verdict(second) == verdict(first)
    backward = next(s for r in second.report["results"] for s in r["steps"]
                    if s["step"] == "backward")
    if name == "0003_loses_rows":
        assert any("orders_order" in lost for lost in backward["rows_lost"])
    else:
        assert 'table "orders_left": unexpected' in backward["schema_diff"]
    # The spare it took is gone; the process it handed over to made another.
    settle(pg_server)
    now = set(spare_names(pg_server))
    assert not made & now
    assert len(now - before) == 1


def test_two_runs_at_once_each_get_a_database_of_their_own(shop: Path, pg_url: str,
                                                          pg_server: Server) -> None:
    unique(shop)
    check(shop, pg_url)
    settle(pg_server)
    command = [sys.executable, "-m", "guard", "check", str(shop / MIGRATION), "--project-dir",
               str(shop), "--db", pg_url, "--format", "json"]
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [proc.communicate(timeout=120) for proc in both]
    assert [proc.returncode for proc in both] == [0, 0], results
    runs = [Run(0, out, err) for out, err in results]
    assert sorted(how_made(run) for run in runs) == [
        "waiting for the run's database; a spare clone",
        "waiting for the run's database; cloned",
    ]


def test_clean_drops_the_spares(shop: Path, pg_url: str, pg_server: Server) -> None:
    unique(shop)
    check(shop, pg_url)
    settle(pg_server)
    assert spare_names(pg_server)
    cleaned = run_guard("clean", "--db", pg_url, "--project-dir", shop)
    assert cleaned.returncode == 0, cleaned.stderr
    assert spare_names(pg_server) == []


def test_an_evicted_base_takes_its_spare_with_it(shop: Path, pg_url: str,
                                                 pg_server: Server) -> None:
    write(shop / "pyproject.toml", "[tool.migration-guard]\ncache_size = 1\n")
    unique(shop)
    check(shop, pg_url)
    settle(pg_server)
    old = spare_names(pg_server)
    unique(shop)  # another base: the first is evicted (one of each kind is kept)
    check(shop, pg_url)
    settle(pg_server)
    assert not set(old) & set(spare_names(pg_server))
