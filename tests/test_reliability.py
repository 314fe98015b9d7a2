"""Faults injected into real runs: timeouts, a server that dies, a run that is killed, and
interrupts at each step. Nothing the tool made may be left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guard.database.server import Server
from tests.guardrun import run_guard, write
from tests.processes import interruptible, processes_using
from tests.test_warm_cluster import run_databases_left

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

SLEEP = "SELECT pg_sleep(60)"


def sql_migration(shop: Path, app: str, name: str, after: str, sql: str, reverse: str) -> Path:
    return write(
        shop / f"{app}/migrations/{name}.py",
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [({app!r}, {after!r})]\n\n"
        f"    operations = [migrations.RunSQL({sql!r}, reverse_sql={reverse!r})]\n",
    )


def start(shop: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    environ.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "guard", "check", *args, "--project-dir", str(shop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
        preexec_fn=interruptible,
    )


def wait_for(proc: subprocess.Popen[str], marker: str) -> list[str]:
    """Read stderr until a line containing ``marker``; the lines read."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError("never saw " + repr(marker) + ":\n" + "".join(seen))


def finish(proc: subprocess.Popen[str], seen: list[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, "".join(seen) + err


# -- timeouts ------------------------------------------------------------------------------------

def test_statement_timeout_stops_a_hanging_migration(shop: Path, pg_url: str) -> None:
    write(shop / "pyproject.toml", '[tool.migration-guard]\nstatement_timeout = "1s"\n')
    path = sql_migration(shop, "orders", "0003_hangs", "0002_order_status", SLEEP, "SELECT 1")
    started = time.monotonic()
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url, "--format", "json")
    assert time.monotonic() - started < 30
    assert run.returncode == 1, run.stderr
    assert run.failed_steps() == [("orders.0003_hangs", "forward")]
    step = run.report["results"][0]["steps"][0]
    assert "canceling statement due to statement timeout" in step["error"]
    assert "statement_timeout = 1s" in step["hint"]


LOCKS = '''
from django.db import connections, migrations


def forwards(apps, schema_editor):
    other = connections.create_connection("default")
    other.set_autocommit(False)
    try:
        with other.cursor() as cursor:
            cursor.execute("LOCK TABLE orders_order IN ACCESS EXCLUSIVE MODE")
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("ALTER TABLE orders_order ADD COLUMN waits int")
    finally:
        other.rollback()
        other.close()


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
'''


def test_lock_timeout_stops_a_migration_waiting_on_a_lock(shop: Path, pg_url: str) -> None:
    write(shop / "pyproject.toml", '[tool.migration-guard]\nlock_timeout = "500ms"\n')
    path = write(shop / "orders/migrations/0003_waits.py", LOCKS)
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url, "--format", "json")
    assert run.returncode == 1, run.stderr
    step = run.report["results"][0]["steps"][0]
    assert "canceling statement due to lock timeout" in step["error"]
    assert "lock_timeout = 500ms" in step["hint"]


def test_a_malformed_timeout_is_a_usage_error(shop: Path, pg_url: str) -> None:
    write(shop / "pyproject.toml", '[tool.migration-guard]\nlock_timeout = "soon"\n')
    run = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url)
    assert run.returncode == 2
    assert "lock_timeout = 'soon' is not a PostgreSQL duration" in run.stderr


# -- the server dies -----------------------------------------------------------------------------

def test_the_server_dying_mid_run_is_an_environment_error(shop: Path, scratch: Path) -> None:
    cache_dir = scratch / "cache"
    path = sql_migration(shop, "orders", "0003_hangs", "0002_order_status", SLEEP, "SELECT 1")
    proc = start(shop, str(path), "--db", "local",
                 env={"MIGRATION_GUARD_CACHE_DIR": str(cache_dir), "SHOP_DB_PORT": "1"})
    seen = wait_for(proc, "base ")
    time.sleep(1.0)
    pid_file = next(cache_dir.glob("cluster-*/postmaster.pid"))
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)  # immediate shutdown
    code, _, err = finish(proc, seen)
    assert code == 2, err
    assert "The PostgreSQL server stopped answering during the forward step of orders.0003_hangs"\
        in err
    assert "Traceback" not in err
    # The next run finds the cluster down and starts it again.
    path.unlink()
    again = run_guard("check", shop / "orders/migrations/0002_order_status.py", "--project-dir",
                      shop, "--db", "local",
                      env={"MIGRATION_GUARD_CACHE_DIR": str(cache_dir), "SHOP_DB_PORT": "1"})
    assert again.returncode == 0, again.stderr
    assert run_databases_left(cache_dir) == []
    assert all(processes_using(c) == [] for c in cache_dir.glob("cluster-*"))


# -- a run killed with SIGKILL -------------------------------------------------------------------

def test_the_next_run_removes_what_a_killed_run_left(shop: Path, pg_url: str,
                                                     pg_server: Server) -> None:
    path = sql_migration(shop, "orders", "0003_hangs", "0002_order_status", SLEEP, "SELECT 1")
    proc = start(shop, str(path), "--db", pg_url)
    seen = wait_for(proc, "base ")
    time.sleep(0.5)
    proc.kill()
    proc.communicate(timeout=30)
    leftover = [name for name in _run_databases(pg_server) if f"_{proc.pid}_" in name]
    assert leftover, "seen:\n" + "".join(seen)
    path.unlink()
    again = run_guard("check", shop / "orders/migrations/0002_order_status.py", "--project-dir",
                      shop, "--db", pg_url)
    assert again.returncode == 0, again.stderr
    assert f"cleaned up 1 database(s) left by runs that were killed: {leftover[0]}" in again.stderr
    assert not [name for name in _run_databases(pg_server) if f"_{proc.pid}_" in name]


def _run_databases(server: Server) -> list[str]:
    from guard.database.server import connect_maintenance

    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'migration\\_guard\\_run%'")
        return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


# -- interrupts at each step ---------------------------------------------------------------------

def test_ctrl_c_while_the_base_is_built_caches_nothing(shop: Path, pg_url: str,
                                                       pg_server: Server) -> None:
    # A slow migration outside the selection: it runs while the base is built.
    sql_migration(shop, "catalog", "0004_slow", "0003_category", SLEEP, "SELECT 1")
    proc = start(shop, str(shop / "orders/migrations/0002_order_status.py"), "--db", pg_url)
    seen = wait_for(proc, "database:")
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc, seen)
    assert code == 130, err
    assert "interrupted; what it created was dropped and stopped" in err
    assert _caches_touched_by(pg_server, proc.pid) == []


def _caches_touched_by(server: Server, pid: int) -> list[str]:
    """Cache databases whose comment says process ``pid`` built or used them."""
    from guard.database.server import connect_maintenance

    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'migration\\_guard\\_cache%%' "
            "AND shobj_description(oid, 'pg_database') LIKE %s", (f'%"pid": {pid}}}%',)
        )
        return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_sigterm_during_the_backward_step(shop: Path, pg_url: str) -> None:
    path = sql_migration(shop, "orders", "0003_slow_back", "0002_order_status", "SELECT 1", SLEEP)
    proc = start(shop, str(path), "--db", pg_url, "-v")  # -v: a line per step, as it ends
    seen = wait_for(proc, "forward       orders.0003_slow_back")
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc, seen)
    assert code == 143, err
    assert "Traceback" not in err


def test_sigterm_while_the_local_cluster_is_initialised(shop: Path, scratch: Path) -> None:
    cache_dir = scratch / "cache"
    proc = start(shop, str(shop / "orders/migrations/0002_order_status.py"), "--db", "local",
                 env={"MIGRATION_GUARD_CACHE_DIR": str(cache_dir), "SHOP_DB_PORT": "1"})
    deadline = time.monotonic() + 30
    while not list(cache_dir.glob("cluster-*.init-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc, [])
    assert code == 143, err
    assert all(processes_using(p) == [] for p in cache_dir.glob("cluster-*"))
    # The next run rebuilds what the interrupted one left half-made, and passes.
    again = run_guard("check", shop / "orders/migrations/0002_order_status.py", "--project-dir",
                      shop, "--db", "local", "--format", "json",
                      env={"MIGRATION_GUARD_CACHE_DIR": str(cache_dir), "SHOP_DB_PORT": "1"})
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["passed"] is True
