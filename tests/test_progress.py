"""Progress while a base is built and while the round trip goes: live on a terminal, a plain
line now and then elsewhere; one line per migration left behind."""

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
from guard.types import StepResult
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
    # (the checks run beside the main line and are said after the round trip: the next line
    # says how the base went)
    assert wiped.startswith("  base ") and "base: applying" not in wiped.splitlines()[0]
    # The round trip is live too; each migration leaves one line behind.
    assert "\r\x1b[K  round trip: forward 1/" in text
    assert "\r\x1b[K  round trip: forward-again " in text


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


def _steps(progress: Progress, key: tuple[str, str], *results: StepResult) -> None:
    for result in results:
        progress.step(key, result)


def test_each_migration_leaves_one_line_with_its_three_steps() -> None:
    out = io.StringIO()
    progress = Progress(out)
    progress.total = 2
    a, b = ("orders", "0003_a"), ("orders", "0004_b")
    _steps(progress, a, StepResult("forward", True, 0.5))
    _steps(progress, b, StepResult("forward", True, 0.25))
    _steps(progress, b, StepResult("backward", False, 0.125, error="rolling it back does not "
                                   "restore the schema from before it"))
    _steps(progress, a, StepResult("backward", None, error="not run: orders.0004_b after it "
                                   "cannot be rolled back"))
    assert out.getvalue() == ""  # nothing final yet, and no half minute gone
    _steps(progress, a, StepResult("forward-again", None, error="not run: it was not rolled back"))
    _steps(progress, b, StepResult("forward-again", True, 0.0625))
    progress.done()
    assert out.getvalue().splitlines() == [
        "  orders.0003_a                            ok       forward 0.50s | backward skipped | "
        "forward-again skipped",
        "  orders.0004_b                            FAILED   forward 0.25s | backward FAILED "
        "0.12s | forward-again 0.06s",
        "      backward: rolling it back does not restore the schema from before it",
    ]


def test_a_round_trip_that_stops_early_still_lists_every_migration() -> None:
    out = io.StringIO()
    progress = Progress(out)
    _steps(progress, ("a", "0001_x"), StepResult("forward", True, 0.5))
    _steps(progress, ("a", "0002_y"), StepResult("forward", False, 0.5, error="boom"))
    _steps(progress, ("a", "0003_z"), StepResult("forward", None, error="not run"))
    progress.done()
    lines = out.getvalue().splitlines()
    assert [line.split()[:2] for line in lines if not line.startswith("      ")] == [
        ["a.0001_x", "ok"], ["a.0002_y", "FAILED"], ["a.0003_z", "skipped"]]
    assert "      forward: boom" in lines


def test_a_long_round_trip_says_where_it_is_every_half_minute() -> None:
    out = io.StringIO()
    progress = Progress(out)
    progress.total = 54
    _steps(progress, ("a", "0001_x"), StepResult("forward", True, 0.5))
    assert out.getvalue() == ""
    progress._last -= PLAIN_EVERY
    _steps(progress, ("a", "0002_y"), StepResult("forward", True, 0.5))
    assert out.getvalue().startswith("  round trip: forward 2/54 a.0002_y (")
    _steps(progress, ("a", "0003_z"), StepResult("forward", True, 0.5))
    assert out.getvalue().count("\n") == 1


def test_verbose_keeps_a_line_per_step() -> None:
    out = io.StringIO()
    progress = Progress(out, verbose=True)
    _steps(progress, ("a", "0001_x"), StepResult("forward", True, 0.5),
           StepResult("backward", None, error="not run: the migration cannot be reversed"))
    assert out.getvalue().splitlines() == [
        "  forward       a.0001_x                                 ok        0.50s",
        "  backward      a.0001_x                                 skipped   0.00s",
        "      not run: the migration cannot be reversed",
    ]
