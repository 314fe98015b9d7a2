"""Findings where code review happens: SARIF for code scanning (validated against the OASIS
SARIF 2.1.0 schema, kept as test data), the GitLab Code Quality report and the pull request
comment body, each placing a result on the line of its operation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from guard.execution.outcome import Outcome
from guard.reporting.markdown import LIMIT, MARKER, as_markdown
from guard.reporting.model import Report
from guard.types import Finding, MigrationKey, Selected, StepResult
from tests.guardrun import Run, run_guard, write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())

INDEXED = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX orders_order_status_idx ON orders_order (status)",
            "DROP INDEX orders_order_status_idx",
        ),
    ]
'''
BROKEN = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_indexed")]

    operations = [
        migrations.RunSQL("CREATE TABLE orders_note (id int)", "DROP TABLE orders_note"),
        migrations.RunSQL(
            "SELECT * FROM no_such_table",
            migrations.RunSQL.noop,
        ),
    ]
'''


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def review(shop: Path, pg_url: str, *paths: Path) -> tuple[Run, dict[str, Any], list[Any], str]:
    """One check writing every review format; (run, SARIF, GitLab, markdown)."""
    out = shop / "out"
    out.mkdir(exist_ok=True)
    run = run_guard("check", *paths, "--project-dir", shop, "--db", pg_url, "--no-github",
                    "--format", "json", "--format", f"sarif={out / 'r.sarif'}",
                    "--format", f"gitlab={out / 'gl.json'}",
                    "--format", f"markdown={out / 'comment.md'}")
    return (run, json.loads((out / "r.sarif").read_text()),
            json.loads((out / "gl.json").read_text()), (out / "comment.md").read_text())


def test_a_failing_run_in_sarif_gitlab_and_markdown(shop: Path, pg_url: str) -> None:
    indexed = write(shop / "orders/migrations/0003_indexed.py", INDEXED)
    broken = write(shop / "orders/migrations/0004_broken.py", BROKEN)
    run, sarif, gitlab, comment = review(shop, pg_url, indexed, broken)
    assert run.returncode == 1, run.stderr
    jsonschema.Draft4Validator(SCHEMA).validate(sarif)
    [log] = sarif["runs"]
    rules = {rule["id"] for rule in log["tool"]["driver"]["rules"]}
    assert {"failed-step", "schema-difference", "rows-lost", "irreversible", "failed-check",
            "safety/rewrite", "safety/blocking-index", "safety/scan", "safety/lock"} <= rules
    assert all(r["shortDescription"]["text"] and r["fullDescription"]["text"]
               and r["help"]["text"] for r in log["tool"]["driver"]["rules"])
    by_rule = {r["ruleId"]: r for r in log["results"]}
    failed = by_rule["failed-step"]
    location = failed["locations"][0]["physicalLocation"]
    assert failed["level"] == "error" and "orders.0004_broken: forward" in failed["message"]["text"]
    assert location["artifactLocation"] == {"uri": "orders/migrations/0004_broken.py",
                                            "uriBaseId": "%SRCROOT%"}
    # The second operation failed: the error is on its line (the line before its SQL).
    second = line_of(broken, '"SELECT * FROM no_such_table"') - 1
    assert location["region"]["startLine"] == second
    index = by_rule["safety/blocking-index"]
    assert index["level"] == "warning"  # reported, not failing: no --fail-on
    assert index["locations"][0]["physicalLocation"]["region"]["startLine"] == line_of(
        indexed, "        migrations.RunSQL(")
    # The same content, run again: the same fingerprints, so code scanning tracks each alert.
    again = review(shop, pg_url, indexed, broken)
    fingerprints = sorted(r["partialFingerprints"]["migrationGuard/v1"] for r in log["results"])
    assert fingerprints == sorted(r["partialFingerprints"]["migrationGuard/v1"]
                                  for r in again[1]["runs"][0]["results"])
    assert len(set(fingerprints)) == len(fingerprints)
    # GitLab Code Quality: the same results, the same lines.
    assert {item["check_name"] for item in gitlab} == set(by_rule)
    for item in gitlab:
        assert set(item) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert item["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert set(item["location"]) == {"path", "lines"} and item["location"]["lines"]["begin"]
    step = next(i for i in gitlab if i["check_name"] == "failed-step")
    assert step["severity"] == "blocker" and step["location"] == {
        "path": "orders/migrations/0004_broken.py",
        "lines": {"begin": location["region"]["startLine"]}}
    assert len({i["fingerprint"] for i in gitlab}) == len(gitlab)
    assert sorted(i["fingerprint"] for i in gitlab) == sorted(i["fingerprint"] for i in again[2])
    # The pull request comment: the marker first, each failing migration named and linked.
    assert comment.splitlines()[0] == MARKER
    assert "migration-guard FAILED" in comment.splitlines()[1]
    assert f"[`orders.0004_broken`](orders/migrations/0004_broken.py#L{second})" in comment
    assert "<details>" in comment and "blocking-index" in comment


def test_a_passing_run_writes_a_valid_empty_log(shop: Path, pg_url: str) -> None:
    quiet = write(shop / "orders/migrations/0003_quiet.py", INDEXED.replace(
        "CREATE INDEX orders_order_status_idx ON orders_order (status)", "SELECT 1").replace(
        "DROP INDEX orders_order_status_idx", "SELECT 1"))
    run, sarif, gitlab, comment = review(shop, pg_url, quiet)
    assert run.returncode == 0, run.stderr
    jsonschema.Draft4Validator(SCHEMA).validate(sarif)
    assert sarif["runs"][0]["results"] == [] and gitlab == []
    assert comment.splitlines()[0] == MARKER and "No failures and no findings." in comment


def test_a_comment_of_500_findings_stays_under_githubs_limit() -> None:
    key: MigrationKey = ("orders", "0003_many")
    steps = [StepResult("forward", True, findings=[
        Finding(kind="rewrite", table=f"orders_table_{n}", lock_mode="ACCESS EXCLUSIVE",
                seconds=0.01, statement=f"ALTER TABLE orders_table_{n} ALTER COLUMN x TYPE bigint",
                detail=f"rewrote orders_table_{n}", hint="Add a column of the new type. " * 20)
        for n in range(500)])]
    failed = ("orders", "0004_broken")
    report = Report(mode="paths", project_dir="/nowhere", settings="shop.settings", last=5,
                    fail_on=frozenset())
    report.selected = [Selected(key, "changed"), Selected(failed, "changed")]
    report.outcomes = {"default": Outcome()}
    report.outcomes["default"].steps = {
        key: steps, failed: [StepResult("forward", False, error="relation does not exist")]}
    comment = as_markdown(report, Path("/nowhere"), environ={})
    assert len(comment) < LIMIT
    assert comment.startswith(MARKER + "\n")
    assert "orders.0004_broken" in comment
    assert "more result(s) cut to stay under GitHub's 65,536-character limit" in comment


def test_a_report_into_a_folder_that_does_not_exist_is_exit_2_before_any_database_work(
        shop: Path, pg_url: str, tmp_path: Path) -> None:
    blocker = write(tmp_path / "a-file", "")
    for target in (tmp_path / "missing" / "r.sarif", blocker / "r.sarif"):
        run = run_guard("check", "--project-dir", shop, "--db", pg_url, "--full",
                        "--format", f"sarif={target}")
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr
        assert f"--format sarif={target}: the folder {target.parent} does not exist" in (
            run.stderr)
        assert "database:" not in run.stderr  # refused before any database work
