"""Progress while a base is built: live on a terminal, a plain line now and then elsewhere."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guard.reporting.progress import PLAIN_EVERY, Progress
from tests.guardrun import write
from tests.test_cache import MIGRATION, unique

SLOW = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_category")]

    operations = [migrations.RunSQL("SELECT pg_sleep(1.5)", "SELECT 1")]
'''


@pytest.mark.e2e
@pytest.mark.usefixtures("db_guard")
def test_a_cold_base_shows_live_progress_on_a_terminal(shop: Path, pg_url: str) -> None:
    unique(shop)  # a base of its own: it is built, not cloned
    write(shop / "catalog/migrations/0004_slow.py", SLOW)
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["TERM"] = "xterm"
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "check", str(shop / MIGRATION), "--project-dir",
         str(shop), "--db", pg_url],
        stdout=subprocess.PIPE, stderr=terminal, env=env,
    )
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the other end closed: the run is over
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        proc.communicate(timeout=60)
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    # While catalog.0004_slow sleeps, the live line names it; the next line wipes it.
    assert "\r\x1b[K  base: applying" in text
    assert "catalog.0004_slow" in text
    last = text.rindex("\r\x1b[K  base: applying")
    wiped = text[last:].split("\r\x1b[K")[2]  # the live line, wiped for the next line
    assert wiped.startswith("check: ") and "base: applying" not in wiped.splitlines()[0]


def test_elsewhere_a_plain_line_every_half_minute() -> None:
    out = io.StringIO()
    progress = Progress(out)
    assert progress.live is False
    started = time.monotonic()
    progress.applying(0, 279, ("orders", "0001_initial"), started)
    assert out.getvalue() == ""  # just started: nothing yet
    progress._last -= PLAIN_EVERY  # half a minute without a line
    progress.applying(133, 279, ("orders", "0134_status"), started - 95)
    assert out.getvalue() == "  base: applying 134/279 orders.0134_status (95s)\n"
    progress.applying(134, 279, ("orders", "0135_more"), started - 96)
    assert out.getvalue().count("\n") == 1  # and not again until the next half minute
