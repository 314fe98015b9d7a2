"""Deploy safety at production size: ``stats`` read from a real "production" database, then
``check --stats`` and ``--max-blocking-seconds`` on the same rewrite of a big and a small table.

Production is a database of this test with the project's two tables, ``ledger_entry`` of
:data:`BIG` rows and ``ledger_kind`` of 1,000, read by a role that may only CONNECT. The branch's
migration turns ``amount`` into a bigint on both (a rewrite of each).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.database.server import Server, connect, connect_maintenance
from tests.guardrun import Run, run_guard, write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

BIG = 1_000_000
SMALL = 1_000

MODELS = '''
from django.db import models


class Kind(models.Model):
    amount = models.{kind_type}()
    payload = models.TextField()


class Entry(models.Model):
    amount = models.{entry_type}()
    payload = models.TextField()
'''
INITIAL = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Kind", fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                       verbose_name="ID")),
            ("amount", models.IntegerField()), ("payload", models.TextField())]),
        migrations.CreateModel("Entry", fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                       verbose_name="ID")),
            ("amount", models.IntegerField()), ("payload", models.TextField())]),
    ]
'''
WIDEN = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [
        migrations.AlterField("{model}", "amount", models.BigIntegerField()),
    ]
'''
PRODUCTION = f"""
CREATE TABLE ledger_kind (id bigserial PRIMARY KEY, amount integer NOT NULL,
                          payload text NOT NULL);
CREATE TABLE ledger_entry (id bigserial PRIMARY KEY, amount integer NOT NULL,
                           payload text NOT NULL);
INSERT INTO ledger_kind (amount, payload)
    SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, {SMALL}) g;
INSERT INTO ledger_entry (amount, payload)
    SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, {BIG}) g;
VACUUM ANALYZE ledger_kind;
VACUUM ANALYZE ledger_entry;
"""


@pytest.fixture(scope="module")
def production(pg_server: Server) -> Iterator[tuple[str, str]]:
    """The production database and a role that may only connect to it: (database, role)."""
    from tests.conftest import register_test_database

    name, role = f"shop_prod_{secrets.token_hex(4)}", f"stats_reader_{secrets.token_hex(4)}"
    register_test_database(name)
    admin = connect_maintenance(pg_server)
    cur = admin.cursor()
    cur.execute(f"CREATE DATABASE {name}")
    cur.execute(f"CREATE ROLE {role} LOGIN")
    own = connect(pg_server, name)
    for statement in filter(str.strip, PRODUCTION.split(";")):
        own.cursor().execute(statement)  # one by one: VACUUM refuses a transaction
    own.close()
    try:
        yield name, role
    finally:
        cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
        cur.execute(f"DROP ROLE {role}")
        admin.close()


def counters(server: Server, name: str) -> dict[str, tuple[int, ...]]:
    """Each production table's scan and write counters, once the sessions' stats are in."""
    time.sleep(1.2)  # a backend's counters reach the shared stats within a second of its end
    conn = connect(server, name)
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT relname, seq_scan, COALESCE(idx_scan, 0), n_tup_ins, n_tup_upd, "
                    "n_tup_del FROM pg_stat_user_tables ORDER BY relname")
        return {row[0]: tuple(row[1:]) for row in cur.fetchall()}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stats_file(production: tuple[str, str], pg_server: Server,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run, dict, dict]:
    """``stats`` taken as the role without privileges; the counters before and after."""
    name, role = production
    path = tmp_path_factory.mktemp("stats") / "production-stats.json"
    before = counters(pg_server, name)
    run = run_guard("stats", "--db", f"postgres://{role}@{pg_server.host}:{pg_server.port}/{name}",
                    "--output", path)
    return path, run, before, counters(pg_server, name)


def test_stats_reads_the_catalogs_only_as_a_role_without_select(
        stats_file: tuple[Path, Run, dict, dict], production: tuple[str, str]) -> None:
    path, run, before, after = stats_file
    assert run.returncode == 0, run.stderr
    assert f"wrote {path}: 2 table(s)" in run.stderr
    data = json.loads(path.read_text())
    assert data["format"] == "migration-guard-stats" and data["version"] == 1
    assert data["database"] == production[0]
    assert set(data["server"]["settings"]) >= {"maintenance_work_mem",
                                               "max_parallel_maintenance_workers"}
    entry, kind = data["tables"]["public.ledger_entry"], data["tables"]["public.ledger_kind"]
    assert abs(entry["rows"] - BIG) < BIG * 0.05 and kind["rows"] == SMALL
    assert entry["heap_bytes"] > 100 * 2**20 and entry["index_bytes"] > 10 * 2**20
    assert entry["indexes"] == {"ledger_entry_pkey": {"bytes": entry["index_bytes"],
                                                      "unique": True}}
    assert "payload" not in path.read_text()  # names and sizes, no row data
    assert after == before  # no table scanned or written


def project(shop: Path, widened: str) -> Path:
    """The example shop with the ledger app; ``widened``'s amount a bigint on the branch."""
    settings = shop / "shop" / "settings.py"
    settings.write_text(settings.read_text().replace('"billing",\n', '"billing",\n    "ledger",\n'))
    write(shop / "ledger" / "__init__.py", "")
    write(shop / "ledger" / "migrations" / "__init__.py", "")
    write(shop / "ledger" / "migrations" / "0001_initial.py", INITIAL)
    write(shop / "ledger" / "models.py", MODELS.format(
        kind_type="BigIntegerField" if widened == "kind" else "IntegerField",
        entry_type="BigIntegerField" if widened == "entry" else "IntegerField"))
    return write(shop / "ledger" / "migrations" / "0002_widen.py", WIDEN.format(model=widened))


def check(shop: Path, migration: Path, pg_url: str, *extra: str | Path) -> Run:
    return run_guard("check", migration, "--project-dir", shop, "--db", pg_url, "--no-github",
                     "--format", "json", "--format", f"text={shop / 'report.txt'}", *extra)


@pytest.mark.parametrize("widened", ["entry", "kind"])
def test_a_budget_fails_the_big_rewrite_and_passes_the_small_one(
        shop: Path, pg_url: str, stats_file: tuple[Path, Run, dict, dict], widened: str) -> None:
    migration = project(shop, widened)
    run = check(shop, migration, pg_url, "--stats", stats_file[0], "--max-blocking-seconds", "1")
    table = f"ledger_{widened}"
    [finding] = [f for f in run.report["findings"]
                 if f["table"] == table and f["direction"] == "forward"]
    estimate = finding["estimate"]
    low, high = estimate["seconds"]
    assert 0 < low < high <= 4 * low
    assert estimate["rows"] == (SMALL if widened == "kind" else pytest.approx(BIG, rel=0.05))
    assert "rewrites ledger_" in estimate["basis"] and "no wait for the lock" in estimate["basis"]
    text = (shop / "report.txt").read_text()
    assert f"rewrites {table} (" in text and "of blocked reads and writes at this server's" in text
    if widened == "entry":
        assert run.returncode == 1, run.stderr
        assert finding["failing"] and high > 1
        assert f"FAILED ledger.0002_widen: forward: rewrite {table}" in text
    else:
        assert run.returncode == 0, run.stderr
        assert not finding["failing"] and high < 1
    assert run.report["safety"]["max_blocking_seconds"] == 1


def test_stats_without_a_budget_estimate_and_do_not_fail(
        shop: Path, pg_url: str, stats_file: tuple[Path, Run, dict, dict]) -> None:
    migration = project(shop, "entry")
    summary, junit = shop / "summary.md", shop / "junit.xml"
    run = run_guard("check", migration, "--project-dir", shop, "--db", pg_url, "--format",
                    "json", "--format", f"junit={junit}", "--stats", stats_file[0],
                    env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert run.returncode == 0, run.stderr
    # The step summary's table of blocking times, the longest first; JUnit carries them too.
    table = [line for line in summary.read_text().splitlines() if line.startswith("| about")]
    assert table and "rewrite ledger_entry: rewrites ledger_entry (1.0M rows" in table[0]
    assert len(table) == 2 and "| forward |" in table[0] + table[1]
    assert "rewrites ledger_entry (1.0M rows" in junit.read_text()
    [finding] = [f for f in run.report["findings"]
                 if f["table"] == "ledger_entry" and f["direction"] == "forward"]
    assert finding["estimate"]["seconds"][1] > 1 and not finding["failing"]
    assert any(n.startswith(f"stats: {stats_file[0]} (2 table(s)") for n in run.report["notes"])


def refused(run: Run, *words: str) -> str:
    """The message of a run refused as bad input: exit 2, no traceback, its last line naming
    ``words``."""
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr and run.stdout == ""
    last = run.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, last
    return last


def test_a_stats_file_that_is_missing_truncated_or_foreign_is_exit_2(
        shop: Path, pg_url: str, stats_file: tuple[Path, Run, dict, dict]) -> None:
    migration = project(shop, "entry")
    good = stats_file[0].read_text()
    truncated = write(shop / "truncated.json", good[: len(good) // 2])
    foreign = write(shop / "report.json", json.dumps({"passed": True, "results": []}))
    cases = {
        shop / "missing.json": "no such file",
        truncated: "is not JSON (truncated?)",
        foreign: "is not a migration-guard stats file",
    }
    for path, why in cases.items():
        refused(check(shop, migration, pg_url, "--stats", path), f"--stats {path}", why,
                "migration-guard stats --db URL")
    # Another major version than the server the run tests on: its estimates would not hold.
    data = json.loads(good)
    here = data["server"]["version_num"] // 10000  # the stats were taken on the test server
    other = 13 if here != 13 else 12
    data["server"].update(version_num=other * 10000 + 10)  # the number decides, not the text
    old = write(shop / "pg13.json", json.dumps(data))
    refused(check(shop, migration, pg_url, "--stats", old), f"--stats {old}",
            f"taken on PostgreSQL {other} (server_version_num {other}0010), but the run tests "
            f"on PostgreSQL {here}", f"major version ({other})")


def test_a_budget_that_is_not_a_positive_number_or_has_no_stats_is_exit_2(
        shop: Path, pg_url: str) -> None:
    migration = project(shop, "entry")
    stats = write(shop / "stats.json", "{}")
    for value in ("-1", "abc", "0"):
        refused(check(shop, migration, pg_url, "--stats", stats, "--max-blocking-seconds", value),
                "--max-blocking-seconds", f"not {value!r}")
    refused(check(shop, migration, pg_url, "--max-blocking-seconds", "5"),
            "--max-blocking-seconds needs production's sizes", "--stats FILE")
    write(shop / "pyproject.toml", "[tool.migration-guard]\nmax_blocking_seconds = -3\n")
    refused(check(shop, migration, pg_url), "max_blocking_seconds", "not -3")


def test_stats_against_a_server_that_refuses_or_a_url_without_a_database_is_exit_2(
        tmp_path: Path) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    refused(run_guard("stats", "--db", f"postgres://postgres@127.0.0.1:{port}/shop"),
            "stats: cannot connect to 'shop'", f"127.0.0.1:{port}")
    refused(run_guard("stats", "--db", "postgres://postgres@127.0.0.1:5432"),
            "the URL names no database")
    assert not list(tmp_path.iterdir())


INDEX = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [
        migrations.AddIndex("entry", models.Index(fields=["amount"], name="entry_amount")),
    ]
'''


def test_an_index_build_is_estimated_from_the_rows_and_old_or_foreign_stats_get_a_note(
        shop: Path, pg_url: str, stats_file: tuple[Path, Run, dict, dict]) -> None:
    project(shop, "none")
    models = shop / "ledger" / "models.py"
    models.write_text(models.read_text().replace(
        "class Entry(models.Model):\n", "class Entry(models.Model):\n"
        "    class Meta:\n        indexes = [models.Index(fields=[\"amount\"], "
        "name=\"entry_amount\")]\n\n"))
    (shop / "ledger" / "migrations" / "0002_widen.py").unlink()
    migration = write(shop / "ledger" / "migrations" / "0002_index.py", INDEX)
    run = check(shop, migration, pg_url, "--stats", stats_file[0])
    assert run.returncode == 0, run.stderr
    [finding] = [f for f in run.report["findings"] if f["direction"] == "forward"]
    assert finding["kind"] == "blocking-index"
    estimate = finding["estimate"]
    assert estimate["rows"] == pytest.approx(BIG, rel=0.05) and estimate["blocks"] == "writes"
    assert estimate["summary"].startswith("builds an index on ledger_entry (1.0M rows, ")
    assert "rows/s for a number key" in estimate["summary"]  # amount is an integer
    assert 0.05 < estimate["seconds"][0] < estimate["seconds"][1] < 60
    # Stats of long ago, and of another project's tables: the run says so.
    data = json.loads(stats_file[0].read_text())
    data["taken_at"] = "2025-01-01T00:00:00+00:00"
    data["tables"] = {f"public.other_{k}": v for k, v in data["tables"].items()}
    foreign = write(shop / "other-stats.json", json.dumps(data))
    run = check(shop, migration, pg_url, "--stats", foreign)
    assert run.returncode == 0, run.stderr
    notes = "\n".join(run.report["notes"])
    assert "days ago (max_stats_age_days = 30)" in notes
    assert "has none of this project's" in notes
    [finding] = [f for f in run.report["findings"] if f["direction"] == "forward"]
    assert "ledger_entry is not in other-stats.json: taken at its size here" in (
        finding["estimate"]["summary"])


def test_a_lock_held_through_a_data_migration_is_scaled_by_the_tables_rows(
        shop: Path, pg_url: str, stats_file: tuple[Path, Run, dict, dict]) -> None:
    # The example's orders.0002 adds a field, then updates every order in a RunPython while
    # the AddField's ACCESS EXCLUSIVE is held; production has a million orders.
    data = json.loads(stats_file[0].read_text())
    data["tables"]["public.orders_order"] = dict(data["tables"]["public.ledger_entry"],
                                                 name="orders_order", indexes={})
    stats = write(shop / "stats.json", json.dumps(data))
    migration = shop / "orders" / "migrations" / "0002_order_status.py"
    run = check(shop, migration, pg_url, "--stats", stats)
    assert run.returncode == 0, run.stderr
    [lock] = [f for f in run.report["findings"]
              if f["kind"] == "lock" and f["direction"] == "forward"]
    estimate = lock["estimate"]
    assert estimate["summary"].startswith(
        "holds ACCESS EXCLUSIVE on orders_order through slow work over orders_order (1.0M rows, ")
    assert "as a write of each row at this server's measured" in estimate["summary"]
    assert "assumes the work writes each row of those tables once" in estimate["basis"]
    # A write of each of a million rows (251 MB), not the call's fixed cost on 3 rows scaled.
    assert 0.2 < estimate["seconds"][0] < estimate["seconds"][1] < 60
    assert estimate["bytes"] == data["tables"]["public.orders_order"]["heap_bytes"] + data[
        "tables"]["public.orders_order"]["toast_bytes"] + data["tables"]["public.orders_order"][
        "index_bytes"]
