"""A base that main has moved past is grown from the cached one, not replayed from scratch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guard.database import cache, throwaway
from guard.database.server import Server, connect
from guard.execution import contents, schema
from tests.guardrun import Run, run_guard, write
from tests.test_cache import MIGRATION, unique

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

# What main gained: a migration outside the selection, with schema and rows of its own.
GAINED = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_category")]

    operations = [
        migrations.RunSQL(
            "CREATE TABLE catalog_gained (id serial PRIMARY KEY, note text NOT NULL);"
            "INSERT INTO catalog_gained (note) VALUES ('one'), ('two')",
            "DROP TABLE catalog_gained",
        ),
    ]
'''


def check(shop: Path, pg_url: str, *extra: str) -> Run:
    run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", pg_url,
                    "--format", "json", *extra)
    assert run.returncode == 0, run.stderr
    return run


def templates(server: Server) -> dict[str, dict[str, Any]]:
    """The cached bases on ``server`` and what they keep, by name."""
    return {name: kept for name, _, kept in cache.entries(server)}


def look(server: Server, name: str) -> tuple[schema.Schema, contents.Contents, set[str]]:
    """A template's schema, its tables' contents (but the migration log's, whose times and ids
    depend on when each row was written) and the migrations it records."""
    conn = connect(server, name)
    try:
        cur = conn.cursor()
        shape = schema.snapshot(cur)
        rows = {t: c for t, c in contents.snapshot(cur).items() if t != "django_migrations"}
        cur.execute("SELECT app || '.' || name FROM django_migrations")
        return shape, rows, {str(row[0]) for row in cur.fetchall()}
    finally:
        conn.close()


def test_main_gaining_a_migration_grows_the_cached_base(
    shop: Path, pg_url: str, pg_server: Server
) -> None:
    unique(shop)
    first = check(shop, pg_url)
    # Built, or grown from the 14 migrations of Django's own apps that every copy of the
    # example starts with, where another test's full run of the example cached them.
    assert first.report["base"]["migrations"] == 19
    assert first.report["base"]["reused"] in (0, 14)
    before = templates(pg_server)
    write(shop / "catalog/migrations/0004_gained.py", GAINED)

    grown = check(shop, pg_url)
    base = grown.report["base"]
    assert (base["migrations"], base["cached"], base["reused"]) == (20, False, 19)
    assert "20 migration(s) outside the selection (cached 19 + applied 1)" in grown.stderr
    made = {name: kept for name, kept in templates(pg_server).items()
            if name not in before}
    assert sorted(kept["stage"] for kept in made.values()) == ["bare", "seeded"]
    seen = {kept["stage"]: look(pg_server, name) for name, kept in made.items()}
    assert "catalog.0004_gained" in seen["bare"][2] and len(seen["bare"][2]) == 20
    assert seen["seeded"][1]["catalog_gained"][0] == 2

    # The same base built from an empty database holds the same schema, rows and records.
    for name in made:
        throwaway.drop_database(pg_server, name)
    for name, kept in before.items():
        if kept.get("stage") == "bare" and "catalog.0004_gained" not in kept.get("migrations", {}):
            throwaway.drop_database(pg_server, name)
    rebuilt = check(shop, pg_url)
    assert (rebuilt.report["base"]["cached"], rebuilt.report["base"]["reused"]) == (False, 0)
    again = {kept["stage"]: look(pg_server, name)
             for name, kept in templates(pg_server).items() if name in made}
    assert set(again) == {"bare", "seeded"}
    for stage in ("bare", "seeded"):
        assert schema.diff(seen[stage][0], again[stage][0]).differences == ()
        assert seen[stage][2] == again[stage][2]
    assert seen["bare"][1] == again["bare"][1]
    # The same rows, but for the times auto_now_add stamps on them (billing_invoice.issued_at).
    counts = [{table: count for table, (count, _) in taken["seeded"][1].items()}
              for taken in (seen, again)]
    assert counts[0] == counts[1]
    same = {t for t, c in seen["seeded"][1].items() if again["seeded"][1][t] == c}
    assert set(seen["seeded"][1]) - same == {"billing_invoice"}

    # Warm again: the exact base is there.
    assert check(shop, pg_url).report["base"]["cached"] is True


def test_a_changed_migration_is_never_grown_over(shop: Path, pg_url: str) -> None:
    """A cached base whose catalog.0003 differs from the project's is no subset: it is not
    reused, although all its other migrations are the same."""
    unique(shop)
    check(shop, pg_url)
    path = shop / "catalog/migrations/0003_category.py"
    path.write_text(path.read_text() + "\nCHANGED = True  # it means something else now\n")
    write(shop / "catalog/migrations/0004_gained.py", GAINED)
    run = check(shop, pg_url)
    assert (run.report["base"]["cached"], run.report["base"]["reused"]) == (False, 0)


def test_a_formatter_over_the_base_keeps_it(shop: Path, pg_url: str) -> None:
    """Comments, formatting and docstrings change a file's bytes (a new key) but not what it
    means: the cached base is still the base, and only what main gained is applied."""
    unique(shop)
    check(shop, pg_url)
    write(shop / "catalog/migrations/0004_gained.py", GAINED)
    grown = check(shop, pg_url)  # what the grown base's migrations mean is carried over
    assert (grown.report["base"]["cached"], grown.report["base"]["reused"]) == (False, 19)
    for path in sorted((shop / "catalog/migrations").glob("0*.py")):
        path.write_text('"""Formatted."""\n# Licence header\n' + path.read_text() + "\n\n")
    write(shop / "catalog/migrations/0005_gained_again.py", GAINED.replace(
        "0003_category", "0004_gained").replace("catalog_gained", "catalog_again"))
    run = check(shop, pg_url)
    assert (run.report["base"]["cached"], run.report["base"]["reused"]) == (False, 20)


def test_rows_off_grows_the_bare_base_it_clones(shop: Path, pg_url: str) -> None:
    unique(shop)
    check(shop, pg_url, "--rows", "0")
    write(shop / "catalog/migrations/0004_gained.py", GAINED)
    run = check(shop, pg_url, "--rows", "0")
    assert (run.report["base"]["cached"], run.report["base"]["reused"]) == (False, 19)
    # With rows the bare base is the exact one: only the rows are made.
    seeded = check(shop, pg_url)
    assert (seeded.report["base"]["cached"], seeded.report["base"]["reused"]) == (False, 20)
    assert seeded.report["base"]["rows"]["rows"] > 0
