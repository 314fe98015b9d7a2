"""Accepted failures: a team opts one migration out (config or a marker comment); it is still
run and reported as skipped (accepted), never silently, and nothing else is let through."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.guardrun import run_guard, write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]


def leaves_a_table(shop: Path, app: str, name: str, after: str, table: str,
                   marker: str = "") -> Path:
    return write(
        shop / f"{app}/migrations/{name}.py",
        marker + "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [({app!r}, {after!r})]\n\n"
        f"    operations = [migrations.RunSQL('CREATE TABLE {table} (id int)', "
        "reverse_sql='SELECT 1')]\n",
    )


def test_accept_in_config_skips_exactly_that_migration(shop: Path, pg_url: str) -> None:
    one = leaves_a_table(shop, "orders", "0003_audit", "0002_order_status", "orders_audit")
    two = leaves_a_table(shop, "catalog", "0004_log", "0003_category", "catalog_log")
    write(shop / "pyproject.toml",
          '[tool.migration-guard]\naccept = {"orders.0003_audit" = "audit table kept on '
          'purpose, see #42"}\n')
    run = run_guard("check", one, two, "--project-dir", shop, "--db", pg_url, "--format", "json")
    assert run.returncode == 1, run.stderr
    results = {r["migration"]: r for r in run.report["results"]}
    assert results["orders.0003_audit"]["accepted"] == "audit table kept on purpose, see #42"
    assert "accepted" not in results["catalog.0004_log"]
    # Still run and reported: its backward step failed, and says so.
    steps = {s["step"]: s["ok"] for s in results["orders.0003_audit"]["steps"]}
    assert steps["backward"] is False
    assert run.report["passed"] is False
    assert "accepted: orders.0003_audit (audit table kept on purpose, see #42)" in run.stderr
    # Its one progress line: accepted, with the step that failed.
    assert re.search(r"^  orders\.0003_audit +accepted +forward [0-9.]+s \| backward FAILED "
                     r"[0-9.]+s \| forward-again", run.stderr, re.MULTILINE), run.stderr


def test_a_marker_comment_accepts_it_and_the_run_passes(shop: Path, pg_url: str,
                                                        tmp_path: Path) -> None:
    path = leaves_a_table(shop, "orders", "0003_audit", "0002_order_status", "orders_audit",
                          marker="# migration-guard: accept the audit table stays\n")
    xml = tmp_path / "report.xml"
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url,
                    "--format", "text", "--format", f"junit={xml}")
    assert run.returncode == 0, run.stderr
    assert ("skipped (accepted: the audit table stays) orders.0003_audit: backward:"
            in run.stdout)
    assert "0 of 1 migration(s) passed, 1 accepted" in run.stdout.splitlines()[-1]
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    skipped = [c.find("skipped").get("message") for c in suite.iter("testcase")
               if c.find("skipped") is not None and c.get("name") == "backward"]
    assert any(m.startswith("accepted (the audit table stays)") for m in skipped)
