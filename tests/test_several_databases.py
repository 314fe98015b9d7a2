"""Several databases: every alias Django migrates is tested, none passes by being skipped.

The scenario (tests/multidb.py): ``default``, a routed ``ledger`` (``audit`` only there, ``tags``
on both, ``archive`` nowhere) and ``replica``, a TEST MIRROR of default. Each alias names a real
database of the project's own on the test server, which must stay empty.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.database.server import Server, connect_maintenance
from tests.conftest import register_test_database
from tests.guardrun import Run, run_guard, write
from tests.multidb import broken_reverse, several_databases
from tests.processes import interruptible
from tests.test_cache import unique

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

ALIASES = ("default", "ledger", "replica")


@pytest.fixture
def own(pg_server: Server) -> Iterator[dict[str, str]]:
    """The project's own databases, one per alias, made here with a table each; the tool must
    leave them as they are."""
    token = secrets.token_hex(4)
    names = {alias: f"mg_own_{alias}_{token}" for alias in ALIASES}
    conn = connect_maintenance(pg_server)
    try:
        cur = conn.cursor()
        for name in names.values():
            register_test_database(name)
            cur.execute(f'CREATE DATABASE "{name}"')
        yield names
    finally:
        for name in names.values():
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()


@pytest.fixture
def project(shop: Path, own: dict[str, str], pg_server: Server) -> Iterator[Path]:
    several_databases(shop)
    yield shop


def env_for(own: dict[str, str], pg_server: Server) -> dict[str, str]:
    return {
        "SHOP_DB_NAME": own["default"], "SHOP_LEDGER_NAME": own["ledger"],
        "SHOP_REPLICA_NAME": own["replica"], "SHOP_DB_HOST": pg_server.host,
        "SHOP_DB_PORT": str(pg_server.port), "SHOP_DB_USER": pg_server.user,
    }


def check(project: Path, own: dict[str, str], pg_server: Server, pg_url: str,
          *args: str | Path, text: bool = False) -> Run:
    """``migration-guard check ARGS`` on the scenario, its report in JSON (or text)."""
    report = () if text else ("--format", "json")
    return run_guard("check", *args, "--project-dir", project, "--db", pg_url, *report,
                     env=env_for(own, pg_server))


def tables(pg_server: Server, dbname: str) -> list[str]:
    from guard.database.server import connect

    conn = connect(pg_server, dbname)
    try:
        cur = conn.cursor()
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return sorted(row[0] for row in cur.fetchall())
    finally:
        conn.close()


def results(run: Run) -> dict[tuple[str, str], dict[str, bool | None]]:
    """(migration, alias) -> {step: ok}."""
    return {
        (r["migration"], r["alias"]): {s["step"]: s["ok"] for s in r["steps"]}
        for r in run.report["results"]
    }


def untouched(pg_server: Server, own: dict[str, str]) -> None:
    for name in own.values():
        assert tables(pg_server, name) == [], f"{name}: the project's own database was migrated"


def test_a_broken_reverse_in_the_routed_app_fails_naming_the_alias(
    project: Path, own: dict[str, str], pg_server: Server, pg_url: str
) -> None:
    path = write(project / "audit/migrations/0002_broken.py",
                 broken_reverse("audit", "audit_extra"))
    run = check(project, own, pg_server, pg_url, path)
    assert run.returncode == 1, run.stderr
    found = results(run)
    assert found[("audit.0002_broken", "ledger")]["forward"] is True
    assert found[("audit.0002_broken", "ledger")]["backward"] is False
    # On default the routers turn it into no-ops: not run there, not passed there either.
    assert set(found[("audit.0002_broken", "default")].values()) == {None}
    assert run.report["aliases"][0]["alias"] == "default"
    assert [a["alias"] for a in run.report["aliases"]] == ["default", "ledger"]
    assert run.report["passed"] is False
    text = check(project, own, pg_server, pg_url, path, text=True)
    assert text.returncode == 1
    assert "FAILED audit.0002_broken on ledger: backward: " in text.stdout
    assert "THIS IS NOT SQL" in text.stdout or "syntax error" in text.stdout
    assert re.search(r"^  audit\.0002_broken on ledger +FAILED +forward [0-9.]+s \| backward "
                     r"FAILED", text.stderr, re.MULTILINE), text.stderr
    verbose = check(project, own, pg_server, pg_url, path, "-v", text=True)
    assert "on default: ran nothing" in verbose.stderr
    assert "on ledger: ran audit.0002_broken" in verbose.stderr
    assert "not run on default: the routers allow none of its operations here" in verbose.stderr
    untouched(pg_server, own)


def test_with_only_default_the_routed_migration_is_reported_not_passed(
    project: Path, own: dict[str, str], pg_server: Server, pg_url: str
) -> None:
    path = write(project / "audit/migrations/0002_broken.py",
                 broken_reverse("audit", "audit_extra"))
    run = check(project, own, pg_server, pg_url, path, "--database", "default")
    assert run.returncode == 0, run.stderr  # nothing failed, but nothing passed either
    assert [a["alias"] for a in run.report["aliases"]] == ["default"]
    [not_run] = run.report["not_run"]
    assert not_run["migration"] == "audit.0002_broken"
    assert "routers allow none of its operations on default" in not_run["reason"]
    assert "ledger" in not_run["reason"]  # not tested here
    assert [(r["passed"], r["ran"]) for r in run.report["results"]] == [(None, False)]
    assert "0 of 1 migration(s) passed, 1 ran on no database" in run.stdout or \
        "warning: audit.0002_broken ran on no database" in run.stderr


def test_a_migration_allowed_on_both_runs_on_both(
    project: Path, own: dict[str, str], pg_server: Server, pg_url: str
) -> None:
    path = write(project / "tags/migrations/0002_broken.py", broken_reverse("tags", "tags_x"))
    run = check(project, own, pg_server, pg_url, path)
    assert run.returncode == 1, run.stderr
    found = results(run)
    for alias in ("default", "ledger"):
        assert found[("tags.0002_broken", alias)] == {
            "forward": True, "backward": False, "forward-again": None}, alias
    failed = sorted((r["migration"], r["alias"]) for r in run.report["results"]
                    if any(s["ok"] is False for s in r["steps"]))
    assert failed == [("tags.0002_broken", "default"), ("tags.0002_broken", "ledger")]


ONLY_ON_LEDGER = '''
from django.db import migrations


def forward(apps, schema_editor):
    if schema_editor.connection.alias == "ledger":
        raise RuntimeError("the ledger holds rows this cannot convert")


class Migration(migrations.Migration):
    dependencies = [("tags", "0001_initial")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
'''

AFTER = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tags", "0002_converts")]
    operations = [migrations.RunSQL("SELECT 1", "SELECT 1")]
'''


def test_a_failure_on_one_alias_blocks_its_dependents_there_only(
    project: Path, own: dict[str, str], pg_server: Server, pg_url: str
) -> None:
    converts = write(project / "tags/migrations/0002_converts.py", ONLY_ON_LEDGER)
    write(project / "tags/migrations/0003_after.py", AFTER)
    run = check(project, own, pg_server, pg_url, converts)
    assert run.returncode == 1, run.stderr
    by = {(r["migration"], r["alias"]): r for r in run.report["results"]}
    assert by[("tags.0002_converts", "default")]["passed"] is True
    assert by[("tags.0003_after", "default")]["passed"] is True
    assert by[("tags.0002_converts", "ledger")]["passed"] is False
    blocked = by[("tags.0003_after", "ledger")]
    assert (blocked["passed"], blocked["blocked_by"]) == (None, ["tags.0002_converts"])
    untouched(pg_server, own)


def test_a_healthy_change_passes_on_both_and_the_cache_is_per_alias(
    project: Path, own: dict[str, str], pg_server: Server, pg_url: str
) -> None:
    path = write(project / "tags/migrations/0002_more.py", '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tags", "0001_initial")]

    operations = [
        migrations.RunSQL("CREATE TABLE tags_more (id integer)",
                          reverse_sql="DROP TABLE tags_more"),
    ]
''')
    unique(project)  # a base of its own: no other test's cache matches it
    first = check(project, own, pg_server, pg_url, path)
    assert first.returncode == 0, first.stderr
    assert {(r["migration"], r["alias"]): r["passed"] for r in first.report["results"]} == {
        ("tags.0002_more", "default"): True, ("tags.0002_more", "ledger"): True}
    assert [a["base"]["cached"] for a in first.report["aliases"]] == [False, False]
    second = check(project, own, pg_server, pg_url, path)
    assert second.returncode == 0, second.stderr
    assert [a["base"]["cached"] for a in second.report["aliases"]] == [True, True]
    assert "replica mirrors default (TEST MIRROR): not migrated" in " ".join(
        second.report["notes"])
    untouched(pg_server, own)


def test_a_migration_the_routers_allow_nowhere_is_reported(
    project: Path, own: dict[str, str], pg_server: Server, pg_url: str
) -> None:
    path = write(project / "archive/migrations/0002_broken.py",
                 broken_reverse("archive", "archive_x"))
    run = check(project, own, pg_server, pg_url, path)
    assert run.returncode == 0, run.stderr
    assert [n["migration"] for n in run.report["not_run"]] == ["archive.0002_broken"]
    assert "routers allow none of its operations on default, ledger" in (
        run.report["not_run"][0]["reason"])
    assert [(r["alias"], r["passed"], r["ran"]) for r in run.report["results"]] == [
        ("default", None, False), ("ledger", None, False)]
    assert "warning: archive.0002_broken ran on no database" in run.stderr
    text = check(project, own, pg_server, pg_url, path, text=True)
    assert "0 of 1 migration(s) passed, 1 ran on no database" in text.stdout


def test_full_run_covers_every_alias(
    project: Path, own: dict[str, str], pg_server: Server, pg_url: str
) -> None:
    run = check(project, own, pg_server, pg_url, "--full")
    assert run.returncode == 0, run.stderr
    found = results(run)
    assert found[("audit.0001_initial", "ledger")]["forward"] is True
    assert set(found[("audit.0001_initial", "default")].values()) == {None}
    assert found[("orders.0002_order_status", "default")]["backward"] is True
    assert set(found[("orders.0002_order_status", "ledger")].values()) == {None}
    assert [n["migration"] for n in run.report["not_run"]] == ["archive.0001_initial"]
    untouched(pg_server, own)


def test_a_non_postgresql_alias_is_named_and_cannot_be_asked_for(
    shop: Path, own: dict[str, str], pg_server: Server, pg_url: str
) -> None:
    several_databases(shop, legacy=True)
    path = write(shop / "audit/migrations/0002_broken.py", broken_reverse("audit", "audit_x"))
    run = check(shop, own, pg_server, pg_url, path)
    assert run.returncode == 1, run.stderr
    [line] = run.report["not_tested"]
    assert line.startswith("database legacy (django.db.backends.sqlite3) is not PostgreSQL")
    assert "the routers allow none there" in line
    assert not (shop / "shop/legacy.sqlite3").exists()
    asked = check(shop, own, pg_server, pg_url, path, "--database", "legacy")
    assert asked.returncode == 2
    assert "--database legacy: DATABASES['legacy']['ENGINE'] is " \
        "'django.db.backends.sqlite3'" in asked.stderr
    mirror = check(shop, own, pg_server, pg_url, path, "--database", "replica")
    assert mirror.returncode == 2
    assert "mirrors 'default' (TEST MIRROR)" in mirror.stderr
    unknown = check(shop, own, pg_server, pg_url, path, "--database", "nope")
    assert unknown.returncode == 2
    assert "--database nope: shop.settings has no such alias" in unknown.stderr


def test_ctrl_c_drops_every_alias_database(
    project: Path, own: dict[str, str], pg_server: Server, pg_url: str, scratch: Path
) -> None:
    path = write(project / "audit/migrations/0002_slow.py", '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL("SELECT pg_sleep(60)", reverse_sql="SELECT 1")]
''')
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(env_for(own, pg_server), TMPDIR=str(scratch))
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "check", str(path), "--project-dir", str(project),
         "--db", pg_url, "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=interruptible,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "forward       audit.0002_slow on default" in line:
            break  # default done (a no-op there); ledger now sleeps in pg_sleep
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "Traceback" not in rest
    untouched(pg_server, own)
    # db_guard: no migration_guard_run_* database of this run is left on the server


def test_the_management_command_tests_every_alias_too(
    project: Path, own: dict[str, str], pg_server: Server, pg_url: str
) -> None:
    from tests.test_management_command import install, manage

    path = write(project / "audit/migrations/0002_broken.py",
                 broken_reverse("audit", "audit_extra"))
    run = manage(install(project), "migration_guard", path, "--db", pg_url, "--format", "json",
                 env=env_for(own, pg_server))
    assert run.returncode == 1, run.stderr
    assert results(run)[("audit.0002_broken", "ledger")]["backward"] is False
    only = manage(project, "migration_guard", path, "--db", pg_url, "--format", "json",
                  "--database", "default", env=env_for(own, pg_server))
    assert only.returncode == 0, only.stderr
    assert [n["migration"] for n in only.report["not_run"]] == ["audit.0002_broken"]
    untouched(pg_server, own)


def test_db_settings_uses_each_alias_own_server(
    project: Path, own: dict[str, str], pg_server: Server
) -> None:
    path = write(project / "audit/migrations/0002_broken.py",
                 broken_reverse("audit", "audit_extra"))
    env = env_for(own, pg_server)
    run = run_guard("check", path, "--project-dir", project, "--db", "settings", "--format",
                    "json", env=env)
    assert run.returncode == 1, run.stderr
    assert results(run)[("audit.0002_broken", "ledger")]["backward"] is False
    # ledger's own server does not answer: --db settings says so, naming the alias.
    away = run_guard("check", path, "--project-dir", project, "--db", "settings",
                     env={**env, "SHOP_LEDGER_PORT": "1"})
    assert away.returncode == 2, away.stderr
    assert "--db settings: cannot use the server of DATABASES['ledger']" in away.stderr
    untouched(pg_server, own)
