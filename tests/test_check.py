"""End to end: ``migration-guard check`` on copies of the example project, on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guardrun import run_guard, write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]


def test_clean_pass_pulls_in_dependents_in_other_apps(shop: Path, pg_url: str) -> None:
    run = run_guard(
        "check", shop / "catalog/migrations/0002_product_sku.py",
        "--project-dir", shop, "--db", pg_url, "--format", "json",
    )
    assert run.returncode == 0, run.stderr
    assert run.selection() == [
        ("catalog.0002_product_sku", "changed"),
        ("orders.0001_initial", "dependent"),
        ("billing.0001_initial", "dependent"),
        ("catalog.0003_category", "dependent"),
        ("orders.0002_order_status", "dependent"),
    ]
    steps = [(r["migration"], [s["step"] for s in r["steps"]]) for r in run.report["results"]]
    assert all(names == ["forward", "backward", "forward-again"] for _, names in steps)
    assert run.report["passed"] is True
    assert run.report["mode"] == "paths"
    assert run.report["database"]["provider"] == "url"


LEFTOVER = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status")]

    operations = [
        migrations.RunSQL("CREATE TABLE orders_audit (id int)", reverse_sql="SELECT 1"),
    ]
'''


def test_reverse_that_leaves_a_table_fails_backward_and_forward_again(
    shop: Path, pg_url: str
) -> None:
    path = write(shop / "orders/migrations/0003_leftover.py", LEFTOVER)
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url, "--format", "json")
    assert run.returncode == 1, run.stderr
    assert run.selection() == [("orders.0003_leftover", "changed")]
    assert run.failed_steps() == [
        ("orders.0003_leftover", "backward"),
        ("orders.0003_leftover", "forward-again"),
    ]
    backward = run.report["results"][0]["steps"][1]
    assert 'table "orders_audit": unexpected' in backward["schema_diff"]
