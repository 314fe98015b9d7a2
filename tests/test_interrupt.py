"""Ctrl-C and SIGTERM in the middle of a migration: exit code, message, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guard.database.cachedir import CACHE_ENV
from tests.guardrun import write
from tests.processes import interruptible, processes_using
from tests.test_warm_cluster import run_databases_left

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

SLOW = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status")]

    operations = [
        migrations.RunSQL("SELECT pg_sleep(60)", reverse_sql="SELECT 1"),
    ]
'''


def interrupt_during_forward(shop: Path, db: str, sig: int, scratch: Path) -> tuple[int, str]:
    path = write(shop / "orders/migrations/0003_slow.py", SLOW)
    env = {**os.environ, "TMPDIR": str(scratch), CACHE_ENV: str(scratch / "cache")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "check", str(path), "--project-dir", str(shop),
         "--db", db],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=interruptible,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.strip().startswith("base "):
            break
    time.sleep(1.0)  # now inside pg_sleep(60)
    started = time.monotonic()
    proc.send_signal(sig)
    _, rest = proc.communicate(timeout=30)
    assert time.monotonic() - started < 20, "the signal did not stop the running statement"
    return proc.returncode, "".join(seen) + rest


def test_ctrl_c_mid_migration_drops_the_database(shop: Path, pg_url: str, scratch: Path) -> None:
    code, stderr = interrupt_during_forward(shop, pg_url, signal.SIGINT, scratch)
    assert code == 130, stderr
    assert "interrupted; what it created was dropped and stopped" in stderr
    assert "Traceback" not in stderr


def test_sigterm_mid_migration_stops_the_local_cluster(shop: Path, scratch: Path) -> None:
    code, stderr = interrupt_during_forward(shop, "local", signal.SIGTERM, scratch)
    assert code == 143, stderr
    assert "terminated; what it created was dropped and stopped" in stderr
    # The server is stopped, the cluster kept in the cache, the run's database dropped.
    assert processes_using(scratch) == []
    assert [p.name for p in scratch.iterdir()] == ["cache"]
    assert run_databases_left(scratch / "cache") == []
