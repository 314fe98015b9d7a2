"""End to end: ``migration-guard check`` on copies of the example project, on a real server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.guardrun import SQUASH, SQUASH_SELECTION, Run, run_guard, write

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


def scenario(shop: Path, name: str, operations: str, *, atomic: bool = True) -> Path:
    """An orders migration after 0002 with the given operations."""
    return write(
        shop / f"orders/migrations/{name}.py",
        "from django.db import migrations\n\n\n"
        "def forwards(apps, schema_editor):\n    pass\n\n\n"
        "class Migration(migrations.Migration):\n"
        + ("    atomic = False\n" if not atomic else "")
        + '    dependencies = [("orders", "0002_order_status")]\n\n'
        f"    operations = [\n        {operations},\n    ]\n",
    )


def check(shop: Path, pg_url: str, *paths: Path | str) -> Run:
    return run_guard(
        "check", *paths, "--project-dir", shop, "--db", pg_url, "--format", "json"
    )


def test_reverse_that_fails(shop: Path, pg_url: str) -> None:
    path = scenario(
        shop, "0003_bad_reverse",
        'migrations.RunSQL("ALTER TABLE orders_order ADD COLUMN note text", '
        'reverse_sql="ALTER TABLE orders_order DROP COLUMN notes")',
    )
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url, "--format", "json")
    assert run.returncode == 1, run.stderr
    assert run.selection() == [("orders.0003_bad_reverse", "changed")]
    assert run.failed_steps() == [("orders.0003_bad_reverse", "backward")]
    backward, again = run.report["results"][0]["steps"][1:]
    assert 'column "notes" of relation "orders_order" does not exist' in backward["error"]
    assert "migrate orders 0002_order_status" in backward["hint"]
    assert again["ok"] is None


def test_reverse_that_leaves_the_schema_different_where_reapplying_does_not_tell(
    shop: Path, pg_url: str
) -> None:
    path = scenario(
        shop, "0003_index_stays",
        'migrations.RunSQL("CREATE INDEX IF NOT EXISTS orders_status_idx '
        'ON orders_order (status)", reverse_sql=migrations.RunSQL.noop)',
    )
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url, "--format", "json")
    assert run.returncode == 1, run.stderr
    assert run.failed_steps() == [("orders.0003_index_stays", "backward")]
    backward = run.report["results"][0]["steps"][1]
    assert any("orders_status_idx" in line or "(status)" in line
               for line in backward["schema_diff"]), backward


def test_irreversible_run_python_is_found_before_any_database_work(
    shop: Path, pg_url: str
) -> None:
    path = scenario(shop, "0003_irreversible", "migrations.RunPython(forwards)")
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url, "--format", "json")
    assert run.returncode == 1, run.stderr
    assert run.report["irreversible"] == [{
        "migration": "orders.0003_irreversible",
        "operation": "RunPython(forwards) has no reverse_code",
        "accepted": False,
        "index": 1,
        "fix": "migrations.RunPython(forwards, reverse_code=migrations.RunPython.noop)",
    }]
    stderr = run.stderr
    assert stderr.index("orders.0003_irreversible: operation 1") < stderr.index("database:")
    steps = {s["step"]: s["ok"] for s in run.report["results"][0]["steps"]}
    assert steps == {"forward": True, "backward": None, "forward-again": None}


def test_accepted_irreversible_migration_passes(shop: Path, pg_url: str) -> None:
    path = scenario(shop, "0003_irreversible", "migrations.RunPython(forwards)")
    write(shop / "pyproject.toml",
          '[tool.migration-guard]\nallow_irreversible = ["orders.0003_irreversible"]\n')
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url, "--format", "json")
    assert run.returncode == 0, run.stderr
    assert run.report["irreversible"][0]["accepted"] is True


def test_non_atomic_migration(shop: Path, pg_url: str) -> None:
    path = scenario(
        shop, "0003_concurrent_index",
        'migrations.RunSQL("CREATE INDEX CONCURRENTLY orders_qty_idx ON orders_order (quantity)", '
        'reverse_sql="DROP INDEX CONCURRENTLY orders_qty_idx")',
        atomic=False,
    )
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url, "--format", "json")
    assert run.returncode == 0, run.stderr
    assert [s["ok"] for s in run.report["results"][0]["steps"]] == [True, True, True]




def test_a_replaced_migration_maps_to_its_squash(shop: Path, pg_url: str) -> None:
    write(shop / "catalog/migrations/0001_squashed_0002_product_sku.py", SQUASH)
    run = check(shop, pg_url, shop / "catalog/migrations/0001_initial.py")
    assert run.returncode == 0, run.stderr
    assert run.selection() == SQUASH_SELECTION
    assert run.report["notes"] == [
        "catalog.0001_initial is replaced by the squashed catalog.0001_squashed_0002_product_sku"
    ]


def test_model_change_without_migration_fails_the_models_check(shop: Path, pg_url: str) -> None:
    models = shop / "orders/models.py"
    models.write_text(models.read_text() + "    note = models.TextField(blank=True)\n")
    run = check(shop, pg_url, shop / "orders/migrations/0002_order_status.py")
    assert run.returncode == 1, run.stderr
    assert run.failed_steps() == []
    failed = {c["name"]: c["errors"] for c in run.report["checks"] if not c["ok"]}
    assert list(failed) == ["models match migrations"]
    assert failed["models match migrations"][0].startswith("orders: ")
    assert "note" in failed["models match migrations"][0]
    # The progress line says what failed, not only that something did.
    assert ("check: models match migrations: FAILED: orders: models have changes with no "
            "migration: Add field note to order") in run.stderr


def test_full_mode_selects_the_last_n_of_each_project_app(shop: Path, pg_url: str) -> None:
    run = run_guard(
        "check", "--full", "--last", "2", "--project-dir", shop, "--db", pg_url,
        "--format", "json",
    )
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "full"
    assert run.selection() == [
        ("catalog.0002_product_sku", "last-N"),
        ("orders.0001_initial", "last-N"),
        ("billing.0001_initial", "last-N"),
        ("catalog.0003_category", "last-N"),
        ("orders.0002_order_status", "last-N"),
    ]
    # Everything else (auth, contenttypes, catalog.0001) was applied from scratch as the base.
    assert run.report["base"]["migrations"] > 1
    assert ("then the last 2 of each project app with migrations (billing, catalog, orders) "
            "back and forth") in run.report["notes"][-1]
    assert {c["name"]: c["ok"] for c in run.report["checks"]} == {
        "conflicting migrations": True, "system checks": True, "models match migrations": True,
    }


def test_paths_that_are_not_migrations_are_listed_and_ignored(shop: Path, pg_url: str) -> None:
    run = check(shop, pg_url, shop / "orders/models.py", shop / "orders/migrations/0099_gone.py")
    assert run.returncode == 0, run.stderr
    assert run.selection() == []
    assert run.report["ignored"] == [
        {"path": str(shop / "orders/models.py"), "reason": "not a migration of an installed app"},
        {"path": str(shop / "orders/migrations/0099_gone.py"), "reason": "no such file"},
    ]
    assert "warning: ignored" in run.stderr


def test_text_output_names_selection_steps_and_summary(shop: Path, pg_url: str) -> None:
    path = write(shop / "orders/migrations/0003_leftover.py", LEFTOVER)
    run = run_guard("check", path, "--project-dir", shop, "--db", pg_url)
    assert run.returncode == 1
    assert "orders.0003_leftover  given" in run.stderr
    # One progress line for the migration, its three steps and times, what failed under it.
    assert re.search(r"^  orders\.0003_leftover +FAILED +forward [0-9.]+s \| backward FAILED "
                     r"[0-9.]+s \| forward-again FAILED [0-9.]+s$", run.stderr, re.MULTILINE), \
        run.stderr
    assert ("      backward: rolling it back does not restore the schema from before it"
            in run.stderr)
    assert "FAILED orders.0003_leftover: backward:" in run.stdout
    assert "hint:" in run.stdout
    assert run.stdout.splitlines()[-1].startswith("migration-guard FAILED: 0 of 1 migration(s)")


FAILING_CHECK = '''

from django.core import checks


@checks.register
def shop_check(app_configs, **kwargs):
    return [checks.Error("the shop is broken", id="shop.E001")]
'''


def test_system_checks_honour_silenced_system_checks(shop: Path, pg_url: str) -> None:
    settings = shop / "shop/settings.py"
    settings.write_text(settings.read_text() + FAILING_CHECK)
    failing = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url,
                        "--format", "json")
    assert failing.returncode == 1, failing.stderr
    [system] = [c for c in failing.report["checks"] if c["name"] == "system checks"]
    assert system["ok"] is False and "shop.E001" in system["errors"][0]
    # As `manage.py check` does, a silenced check is not reported (a real project, the
    # djangoproject.com dev settings, silences a check of django-recaptcha this way).
    settings.write_text(settings.read_text() + 'SILENCED_SYSTEM_CHECKS = ["shop.E001"]\n')
    silenced = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url,
                         "--format", "json")
    assert silenced.returncode == 0, silenced.stderr
    [system] = [c for c in silenced.report["checks"] if c["name"] == "system checks"]
    assert system == {"name": "system checks", "ok": True, "errors": [], "warnings": []}


BROKEN_FORWARD = """
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status")]
{atomic}
    operations = [
        migrations.RunSQL("CREATE TABLE orders_half (id int)", "DROP TABLE orders_half"),
        migrations.RunSQL("SELECT * FROM no_such_table", migrations.RunSQL.noop),
    ]
"""


def test_what_applied_before_a_failed_forward_still_goes_back_and_forth(
    shop: Path, pg_url: str
) -> None:
    write(shop / "orders/migrations/0003_broken.py", BROKEN_FORWARD.format(atomic=""))
    run = run_guard("check", "--full", "--last", "2", "--project-dir", shop, "--db", pg_url,
                    "--format", "json")
    assert run.returncode == 1, run.stderr
    assert run.failed_steps() == [("orders.0003_broken", "forward")]
    steps = {r["migration"]: [(s["step"], s["ok"]) for s in r["steps"]]
             for r in run.report["results"]}
    assert steps.pop("orders.0003_broken") == [("forward", False)]
    # The five before it were rolled back and applied again, not only applied.
    assert len(steps) == 5 and all(
        s == [("forward", True), ("backward", True), ("forward-again", True)]
        for s in steps.values()), steps


def test_a_half_done_non_atomic_failure_goes_on_from_a_new_database(shop: Path,
                                                                    pg_url: str) -> None:
    # Its first statement committed: the schema is not the one the migrations before it left,
    # so comparing their rollbacks with it would blame them for orders_half. The run starts
    # over on a new clone of the base, applies them again, and goes on.
    write(shop / "orders/migrations/0003_broken.py",
          BROKEN_FORWARD.format(atomic="    atomic = False\n"))
    run = run_guard("check", "--full", "--last", "2", "--project-dir", shop, "--db", pg_url,
                    "--format", "json")
    assert run.returncode == 1, run.stderr
    assert run.failed_steps() == [("orders.0003_broken", "forward")]
    others = [r for r in run.report["results"] if r["migration"] != "orders.0003_broken"]
    assert len(others) == 5 and all(r["passed"] is True for r in others), others
    assert not any("orders_half" in str(r) for r in others)


def test_what_a_failed_forward_kept_from_running_did_not_pass(shop: Path, pg_url: str) -> None:
    broken = write(shop / "catalog/migrations/0004_broken.py", (
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        '    dependencies = [("catalog", "0003_category")]\n'
        '    operations = [migrations.RunSQL("SELECT * FROM no_such_table")]\n'
    ))
    write(shop / "orders/migrations/0003_after.py", (
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        '    dependencies = [("orders", "0002_order_status"), ("catalog", "0004_broken")]\n'
        "    operations = []\n"
    ))
    report = shop / "report.json"
    run = run_guard("check", broken, "--project-dir", shop, "--db", pg_url,
                    "--format", "text", "--format", f"json={report}")
    assert run.returncode == 1, run.stderr
    results = {r["migration"]: r for r in json.loads(report.read_text())["results"]}
    assert results["catalog.0004_broken"]["passed"] is False
    after = results["orders.0003_after"]
    assert after["passed"] is None
    assert [(s["step"], s["ok"]) for s in after["steps"]] == [("forward", None)]
    assert after["blocked_by"] == ["catalog.0004_broken"]
    assert "0 of 2 migration(s) passed, 1 failed, 1 blocked by a failure" in run.stdout


PARSES_KEYS = '''
from django.db import migrations


def split_keys(apps, schema_editor):
    for order in apps.get_model("orders", "Order").objects.all():
        app, pk = order.status.split(":", 1)  # the app always writes "app:pk" (taiga's history)


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status")]
    operations = [migrations.RunPython(split_keys, migrations.RunPython.noop)]
'''


def test_a_data_migration_that_trips_over_generated_rows_says_how_to_fit_them(
    shop: Path, pg_url: str
) -> None:
    path = write(shop / "orders/migrations/0003_split_keys.py", PARSES_KEYS)
    run = check(shop, pg_url, path)
    assert run.returncode == 1, run.stderr
    forward = run.report["results"][0]["steps"][0]
    assert forward["ok"] is False and "ValueError" in forward["error"]
    assert "own Python code" in forward["hint"] and "seed = " in forward["hint"]
    assert "--rows 0" in forward["hint"]
    assert check(shop, pg_url, path, "--rows", "0").returncode == 0


DISCARDS = '''
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False  # DISCARD ALL cannot run in a transaction
    dependencies = [("orders", "0002_order_status")]
    operations = [migrations.RunSQL("DISCARD ALL", "DISCARD ALL")]
'''


def test_a_migration_that_discards_the_sessions_state_is_still_read(shop: Path,
                                                                   pg_url: str) -> None:
    """Its DISCARD ALL drops the session's prepared reading and checksum function: the next
    snapshot prepares them again."""
    run = check(shop, pg_url, write(shop / "orders/migrations/0003_discards.py", DISCARDS))
    assert run.returncode == 0, run.stderr
    assert run.report["passed"] is True
    steps = run.report["results"][0]["steps"]
    assert [(s["step"], s["ok"]) for s in steps] == [
        ("forward", True), ("backward", True), ("forward-again", True)]
