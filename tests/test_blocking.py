"""Whole verdicts: a failing migration blocks only the migrations that depend on it; every other
one is still tested, on a database as it would be without the failed one."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.guardrun import Run, run_guard, write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

BROKEN = "catalog.0004_broken"


def migration(dependencies: list[tuple[str, str]], sql: str = "SELECT 1",
              reverse: str = "SELECT 1", *, atomic: bool = True) -> str:
    """One RunSQL per statement of ``sql`` (``;``-separated): a non-atomic migration commits
    each before the next runs."""
    operations = ", ".join(f"migrations.RunSQL({part.strip()!r}, {reverse!r})"
                           for part in sql.split(";"))
    return (
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        + ("" if atomic else "    atomic = False\n")
        + f"    dependencies = {dependencies!r}\n"
        f"    operations = [{operations}]\n"
    )


def four_apps(shop: Path, *, broken_sql: str = "SELECT * FROM no_such_table",
              atomic: bool = True) -> dict[str, Path]:
    """App A (catalog) with a failing migration and a later one after it; app C (orders) with
    one migration that needs it and one that does not; app B (billing) and app D (shipping,
    new) independent."""
    settings = shop / "shop/settings.py"
    settings.write_text(settings.read_text().replace('"billing",', '"billing",\n    "shipping",'))
    write(shop / "shipping/__init__.py", "")
    write(shop / "shipping/migrations/__init__.py", "")
    return {
        BROKEN: write(shop / "catalog/migrations/0004_broken.py", migration(
            [("catalog", "0003_category")], broken_sql, "SELECT 1", atomic=atomic)),
        "catalog.0005_after": write(shop / "catalog/migrations/0005_after.py", migration(
            [("catalog", "0004_broken")], "CREATE TABLE catalog_after (id int)",
            "DROP TABLE catalog_after")),
        "orders.0003_free": write(shop / "orders/migrations/0003_free.py", migration(
            [("orders", "0002_order_status")], "CREATE TABLE orders_free (id int)",
            "DROP TABLE orders_free")),
        "orders.0004_needs": write(shop / "orders/migrations/0004_needs.py", migration(
            [("orders", "0003_free"), ("catalog", "0004_broken")])),
        "billing.0002_free": write(shop / "billing/migrations/0002_free.py", migration(
            [("billing", "0001_initial")], "CREATE TABLE billing_free (id int)",
            "DROP TABLE billing_free")),
        "shipping.0001_initial": write(shop / "shipping/migrations/0001_initial.py", migration(
            [], "CREATE TABLE shipping_box (id int)", "DROP TABLE shipping_box")),
    }


BLOCKED = {"catalog.0005_after", "orders.0004_needs"}


def verdicts(run: Run) -> dict[str, tuple[object, list[str]]]:
    return {r["migration"]: (r["passed"], r.get("blocked_by", [])) for r in run.report["results"]}


def assert_whole(run: Run, tested: set[str]) -> None:
    assert run.returncode == 1, run.stderr
    found = verdicts(run)
    assert found[BROKEN] == (False, [])
    for key in BLOCKED:
        assert found[key] == (None, [BROKEN]), key
    passed = {key for key, (ok, _) in found.items() if ok is True}
    assert passed == tested - BLOCKED - {BROKEN}, found
    for result in run.report["results"]:
        if result["migration"] in BLOCKED:
            [step] = result["steps"]
            assert step == {"step": "forward", "ok": None, "seconds": 0.0,
                            "error": f"not run: needs {BROKEN}, which failed",
                            "blocked_by": [BROKEN]}
        elif result["passed"]:
            assert [(s["step"], s["ok"]) for s in result["steps"]] == [
                ("forward", True), ("backward", True), ("forward-again", True)]


def test_the_full_run_tests_every_migration_that_does_not_need_the_failure(
        shop: Path, pg_url: str) -> None:
    four_apps(shop)
    junit = shop / "junit.xml"
    text = shop / "report.txt"
    run = run_guard("check", "--full", "--last", "2", "--project-dir", shop, "--db", pg_url,
                    "--format", "json", "--format", f"junit={junit}", "--format", f"text={text}")
    selected = {s["migration"] for s in run.report["selected"]}
    assert {"billing.0002_free", "shipping.0001_initial", "orders.0003_free"} <= selected
    assert_whole(run, selected)
    summary = text.read_text().splitlines()[-1]
    assert f"{len(selected) - 3} of {len(selected)} migration(s) passed, 1 failed, " \
           "2 blocked by a failure" in summary, summary
    # Each blocked migration's line names the failure it waits on.
    [line] = [line for line in run.stderr.splitlines()
              if "catalog.0005_after" in line and "blocked" in line]
    assert line.split()[1:] == ["blocked", "not", "run:", "needs", f"{BROKEN},", "which",
                                "failed"], line
    # JUnit: each step of a blocked migration is skipped with the same reason.
    cases = ET.parse(junit).getroot().iter("testcase")
    blocked = [c for c in cases if c.get("classname") == "orders.0004_needs"]
    assert len(blocked) == 3
    assert {c.find("skipped").get("message") for c in blocked} == {  # type: ignore[union-attr]
        f"not run: needs {BROKEN}, which failed"}


def test_paths_mode_tests_an_unrelated_migration_after_a_failure(shop: Path,
                                                                 pg_url: str) -> None:
    files = four_apps(shop)
    run = run_guard("check", files[BROKEN], files["billing.0002_free"], "--project-dir", shop,
                    "--db", pg_url, "--format", "json")
    assert_whole(run, {BROKEN, "billing.0002_free", *BLOCKED})


def test_a_half_done_failure_goes_on_from_a_new_database(shop: Path, pg_url: str) -> None:
    # Its first statement commits before the second fails: the database is not the one the
    # migrations before it left, so the run starts over on a new clone without it.
    four_apps(shop, atomic=False,
              broken_sql="CREATE TABLE catalog_half (id int); SELECT * FROM no_such_table")
    report = shop / "report.json"
    run = run_guard("check", "--full", "--last", "2", "--project-dir", shop, "--db", pg_url,
                    "--format", f"json={report}", "--timings")
    run = Run(run.returncode, report.read_text(), run.stderr)
    assert_whole(run, {s["migration"] for s in run.report["selected"]})
    assert any(p["name"] == "starting over" for p in run.report["timings"]), run.report["timings"]


def test_report_merge_keeps_what_blocked_a_migration(shop: Path, pg_url: str) -> None:
    four_apps(shop)
    reports = []
    for index in (1, 2):
        path = shop / f"shard{index}.json"
        run_guard("check", "--full", "--last", "2", "--shard", f"{index}/2", "--project-dir",
                  shop, "--db", pg_url, "--format", f"json={path}")
        reports.append(path)
    merged = run_guard("report", "merge", *reports, "--format", "json")
    assert merged.returncode == 1, merged.stderr
    found = verdicts(merged)
    for key in BLOCKED:
        assert found[key] == (None, [BROKEN]), (key, found)
    assert found[BROKEN] == (False, [])
    assert json.loads(merged.stdout)["passed"] is False


def test_a_named_migration_whose_dependency_fails_outside_the_selection(
        shop: Path, pg_url: str) -> None:
    files = four_apps(shop)
    run = run_guard("check", files["catalog.0005_after"], "--project-dir", shop, "--db", pg_url)
    assert run.returncode == 1, run.stderr
    assert f"FAILED base: {BROKEN} (outside the selection) failed to apply from an empty " \
           "database" in run.stdout, run.stdout
    assert "Traceback" not in run.stderr


def test_a_failure_to_apply_again_blocks_only_its_dependents_from_being_applied_again(
        shop: Path, pg_url: str) -> None:
    # Its reverse leaves its row behind (a warning, not a schema difference that every later
    # rollback would see): applying it again fails on the duplicate key.
    files = four_apps(shop, broken_sql="INSERT INTO catalog_category (id, name) VALUES "
                                       "(999001, 'left behind')")
    run = run_guard("check", files[BROKEN], files["billing.0002_free"], "--project-dir", shop,
                    "--db", pg_url, "--format", "json")
    assert run.returncode == 1, run.stderr
    results = {r["migration"]: r for r in run.report["results"]}
    assert run.failed_steps() == [("catalog.0004_broken", "forward-again")]
    for key in BLOCKED:
        steps = {s["step"]: s for s in results[key]["steps"]}
        assert (steps["forward"]["ok"], steps["backward"]["ok"]) == (True, True), key
        assert steps["forward-again"]["ok"] is None
        assert steps["forward-again"]["blocked_by"] == [BROKEN]
        assert steps["forward-again"]["error"] == \
            f"not run: needs {BROKEN}, which failed to apply again"
        assert "blocked_by" not in results[key]  # it was applied: not a blocked migration
    assert results["billing.0002_free"]["passed"] is True
    assert [(s["step"], s["ok"]) for s in results["billing.0002_free"]["steps"]] == [
        ("forward", True), ("backward", True), ("forward-again", True)]
