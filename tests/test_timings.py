"""Where a run's time went: ``--timings`` on stderr, ``timings`` in the JSON report."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from guard import timings
from tests.guardrun import run_guard

pytestmark = pytest.mark.usefixtures("db_guard")


@pytest.mark.e2e
def test_a_run_says_where_its_time_went(shop: Path, pg_url: str) -> None:
    run = run_guard(
        "check", shop / "orders/migrations/0002_order_status.py", "--project-dir", shop,
        "--db", pg_url, "--format", "json", "--timings",
    )
    assert run.returncode == 0, run.stderr
    report = run.report
    phases = report["timings"]
    names = [p["name"] for p in phases if not p["within"]]
    for expected in ("start-up", "django", "graph", "plan", "states", "server", "base",
                     "checks", "round trip"):
        assert expected in names, (expected, names)
    within = {(p["within"], p["name"]): p for p in phases if p["within"]}
    assert ("checks", "system checks") in within
    assert ("checks", "models match migrations") in within
    # One migration: before it, after its forward, after its rollback (the schema and the
    # rows, in one round trip each); after its forward again (the schema).
    assert within["round trip", "snapshots: schema and rows"]["detail"] == "3 time(s)"
    assert within["round trip", "snapshots: schema"]["detail"] == "1 time(s)"
    total = report["seconds"]
    main_line = [p for p in phases if not p["within"] and not p["parallel"]]
    assert sum(p["seconds"] for p in main_line) <= total + 0.01
    for phase in phases:
        assert phase["seconds"] >= 0
        assert 0 <= phase["started"] <= total + 0.01, phase
    starts = [p["started"] for p in phases]
    assert starts == sorted(starts)
    # The same on stderr, for people, with the parts of a phase under it.
    assert "timings: " in run.stderr
    lines = run.stderr[run.stderr.index("timings: "):].splitlines()
    assert any(line.startswith("  django ") for line in lines)
    assert any(line.startswith("    system checks ") for line in lines)


@pytest.mark.e2e
def test_without_the_flag_only_the_json_has_them(shop: Path, pg_url: str) -> None:
    run = run_guard(
        "check", shop / "orders/migrations/0002_order_status.py", "--project-dir", shop,
        "--db", pg_url, "--format", "json",
    )
    assert run.returncode == 0, run.stderr
    assert "timings: " not in run.stderr
    assert {p["name"] for p in run.report["timings"]} >= {"django", "round trip"}


def test_the_django_side_goes_on_with_the_clock_of_the_process_that_started_it() -> None:
    timings.reset()
    origin = time.time() - 0.5
    timings.adopt((origin, (("start-up", 0.0, 0.05, "the tool"), ("git", 0.05, 0.1, "diff"))))
    try:
        phases = timings.RUN.ordered()
        assert [(p.name, p.detail) for p in phases] == [
            ("start-up", "the tool"), ("start-up", "the project's interpreter"), ("git", "diff")]
        assert timings.RUN.now() >= 0.5
        timings.RUN.tally("schema snapshots", 0.01, within="round trip")
        timings.RUN.tally("schema snapshots", 0.02, within="round trip")
        tallied = [p for p in timings.RUN.ordered() if p.name == "schema snapshots"]
        assert len(tallied) == 1
        assert tallied[0].detail == "2 time(s)"
        assert tallied[0].seconds == pytest.approx(0.03)
    finally:
        timings.reset()
