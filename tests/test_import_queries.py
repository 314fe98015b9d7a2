"""A migration module that queries the database when Django imports it (taiga-back's
projects.0046 reads the server's version to pick its SQL) gets an empty database of the run's,
with every provider, as ``manage.py migrate`` on a new database gives it one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from guard.database.server import Server
from tests.conftest import REPO
from tests.guardrun import run_guard, write
from tests.test_bad_input_more import error_paragraph
from tests.test_providers import local_env, settings_env
from tests.test_warm_cluster import run_databases_left

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

VERSIONED = '''from django.db import connection, migrations

with connection.cursor() as cursor:
    cursor.execute("SELECT current_setting('server_version_num')")
    VERSION = int(cursor.fetchone()[0])


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status")]
    operations = [
        migrations.RunSQL(
            "CREATE TABLE orders_note (id int)" if VERSION >= 100000 else "SELECT 1",
            "DROP TABLE IF EXISTS orders_note",
        ),
    ]
'''


def versioned(shop: Path) -> Path:
    return write(shop / "orders/migrations/0003_versioned.py", VERSIONED)


def passed(report: dict[str, object]) -> dict[str, object]:
    return {r["migration"]: r["passed"] for r in report["results"]}  # type: ignore[attr-defined,index]


@pytest.mark.parametrize("provider", ["url", "settings", "local", "docker"])
def test_a_migration_that_queries_the_server_when_imported_is_checked(
    shop: Path, pg_url: str, pg_server: Server, scratch: Path, provider: str
) -> None:
    path = versioned(shop)
    env: dict[str, str] = {}
    db = provider
    if provider == "url":
        db = pg_url
    elif provider == "settings":
        env = settings_env(pg_server, "shop_never_created")
    elif provider == "local":
        env = local_env(scratch)
    else:  # the stand-in docker of the tests, which runs a real PostgreSQL
        env = {"PATH": f"{REPO / 'tests/bin'}{os.pathsep}{os.environ['PATH']}",
               "FAKE_DOCKER_STATE": str(scratch / "docker-state")}
    run = run_guard("check", path, "--project-dir", shop, "--db", db, "--format", "json",
                    "--timings", env=env)
    assert run.returncode == 0, run.stderr
    assert run.report["database"]["provider"] == provider
    assert passed(run.report) == {"orders.0003_versioned": True}
    graph = [p for p in run.report["timings"] if p["name"] == "graph"]
    assert graph and graph[-1]["detail"] == "loaded again, with an empty database", graph
    if provider == "local":
        assert run_databases_left(scratch / "cache") == []
    if provider == "docker":
        assert list((scratch / "docker-state/containers").iterdir()) == []


def test_an_import_time_query_that_fails_on_an_empty_database_is_named(
        shop: Path, pg_url: str) -> None:
    path = write(shop / "orders/migrations/0003_reads.py", (
        "from django.db import connection, migrations\n\n"
        "connection.cursor().execute('SELECT * FROM orders_settings')\n\n\n"
        "class Migration(migrations.Migration):\n"
        '    dependencies = [("orders", "0002_order_status")]\n'
        "    operations = []\n"
    ))
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url)
    assert run.returncode == 2, run.stderr
    message = error_paragraph(run)
    assert f"{path}:3 queries the database when it is imported, and the query failed" in message
    assert "orders_settings" in message and "empty database" in message
    assert "Traceback" not in run.stderr


def test_an_import_time_query_against_a_server_that_refuses_is_an_environment_error(
        shop: Path) -> None:
    versioned(shop)
    run = run_guard("check", "--full", "--project-dir", shop, "--db",
                    "postgres://postgres@127.0.0.1:1/postgres", "--format", "json")
    assert run.returncode == 2, run.stderr
    message = error_paragraph(run)
    assert "127.0.0.1:1" in message
    assert "Traceback" not in run.stderr
    assert run.stdout == "" or json.loads(run.stdout)
