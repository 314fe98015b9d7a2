"""``--jobs N``: independent groups of the round trip at once, with the verdicts of one at a
time."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.guardrun import Run, run_guard, write
from tests.test_cache import unique

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard"),
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="parts are forked on Linux only")]


def chain(shop: Path, app: str, after: str, first: int, sqls: list[tuple[str, str]],
          *, atomic: list[bool] | None = None) -> list[Path]:
    """Migrations ``app.000<first>...``, one after the other, each with one RunSQL."""
    made = []
    previous = after
    for offset, (sql, reverse) in enumerate(sqls):
        name = f"{first + offset:04d}_step"
        non_atomic = atomic is not None and not atomic[offset]
        made.append(write(shop / f"{app}/migrations/{name}.py", (
            "from django.db import migrations\n\n\n"
            "class Migration(migrations.Migration):\n"
            + ("    atomic = False\n" if non_atomic else "")
            + f"    dependencies = [({app!r}, {previous!r})]\n"
            f"    operations = [migrations.RunSQL({sql!r}, {reverse!r})]\n"
        )))
        previous = name
    return made


def tables(app: str, first: int) -> list[tuple[str, str]]:
    return [(f"CREATE TABLE {app}_t{n} (id int)", f"DROP TABLE {app}_t{n}")
            for n in range(first, first + 3)]


def both(shop: Path, pg_url: str, *paths: Path) -> tuple[Run, Run]:
    runs = tuple(run_guard("check", *paths, "--project-dir", shop, "--db", pg_url,
                           "--format", "json", "--jobs", jobs) for jobs in ("1", "2"))
    return runs[0], runs[1]


def results(run: Run) -> list[tuple[object, ...]]:
    return [(r["migration"], r["passed"],
             [(s["step"], s["ok"], s.get("error"), s.get("schema_diff")) for s in r["steps"]])
            for r in run.report["results"]]


def round_trip(run: Run) -> str:
    return next(str(p["detail"]) for p in run.report["timings"] if p["name"] == "round trip")


def test_two_independent_groups_run_at_once_with_the_same_verdicts(shop: Path,
                                                                   pg_url: str) -> None:
    unique(shop)
    catalog = chain(shop, "catalog", "0003_category", 4, tables("catalog", 4))
    orders = chain(shop, "orders", "0002_order_status", 3, tables("orders", 3))
    one, two = both(shop, pg_url, catalog[0], orders[0])
    assert one.returncode == two.returncode == 0, two.stderr
    assert round_trip(one) == "6 migration(s)"
    assert round_trip(two) == "6 migration(s) in 2 parts at once"
    assert results(two) == results(one)
    # The lines come in the order of one at a time.
    lines = [line.split()[0] for line in two.stderr.splitlines()
             if line.startswith("  ") and line.split()[0].startswith(("catalog.", "orders."))
             and " ok " in line]
    assert lines == [r["migration"] for r in one.report["results"]]


@pytest.mark.parametrize("broken", ["forward", "half-done", "forward-again"])
def test_a_failure_is_judged_as_one_round_trip_at_a_time_judges_it(
    shop: Path, pg_url: str, broken: str
) -> None:
    unique(shop)
    catalog = chain(shop, "catalog", "0003_category", 4, tables("catalog", 4))
    sqls = tables("orders", 3)
    atomic = None
    if broken == "forward":
        sqls[1] = ("SELECT * FROM no_such_table", "SELECT 1")
    elif broken == "half-done":  # its first statement commits, its second fails
        sqls[1] = ("CREATE TABLE orders_half (id int); SELECT * FROM no_such_table", "SELECT 1")
        atomic = [True, False, True]
    else:  # its reverse leaves the table: applying it again fails
        sqls[1] = ("CREATE TABLE orders_left (id int)", "SELECT 1")
    orders = chain(shop, "orders", "0002_order_status", 3, sqls, atomic=atomic)
    one, two = both(shop, pg_url, catalog[0], orders[0])
    assert one.returncode == two.returncode == 1, two.stderr
    assert round_trip(two).endswith("in 2 parts at once")
    assert results(two) == results(one)
    assert two.stdout.count("not run") == one.stdout.count("not run")
    if broken == "forward-again":
        # orders.0004's reverse leaves its table: the catalog's rollbacks, compared after it one
        # at a time, are compared with what it left (and say so), not blamed for it.
        assert all(r["passed"] is True for r in one.report["results"]
                   if r["migration"].startswith("catalog."))
        warnings = [w for r in one.report["results"] if r["migration"].startswith("catalog.")
                    for s in r["steps"] for w in s.get("warnings", [])]
        assert "schema compared with what the rollback of orders.0004_step left behind" \
            in warnings
