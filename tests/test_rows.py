"""Rows in the base: migrations that only break on data fail with rows and pass without.

Each scenario (tests/rowsproject.py) is a defect that works on empty tables, or its fixed
variant: the defect fails with the default rows and passes with ``--rows 0``; the fix passes
both ways. The generator itself is checked from inside a migration: a ``RunPython`` that looks
at the rows it finds and raises if they are not what the README promises.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.guardrun import Run, run_guard, write
from tests.rowsproject import SCENARIOS, add_inventory, add_scenario

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

DEFECTS = [name for name, s in SCENARIOS.items() if s.fails]
FIXES = [name for name, s in SCENARIOS.items() if not s.fails]
LOSES_ROWS = {"unique-fixed", "not-null-fixed", "remove-field-fixed"}
"""Fixes whose rollback does not give the rows back (deduplicated labels, NULLs filled in, a
dropped column's values): each is a warning, never a failure."""


def check(project: Path, migration: Path, pg_url: str, *extra: str) -> Run:
    return run_guard("check", migration, "--project-dir", project, "--db", pg_url,
                     "--format", "json", "--no-github", *extra)


def failed(run: Run) -> list[tuple[str, str]]:
    return [(s["step"], s.get("error", "")) for r in run.report["results"] for s in r["steps"]
            if s["ok"] is False]


def rows_lost(run: Run) -> list[str]:
    return [lost for r in run.report["results"] for s in r["steps"]
            for lost in s.get("rows_lost", [])]


@pytest.mark.parametrize("name", DEFECTS)
def test_a_defect_fails_with_rows_and_passes_without(shop: Path, pg_url: str, name: str) -> None:
    add_inventory(shop)
    migration = add_scenario(shop, name)
    scenario = SCENARIOS[name]

    with_rows = check(shop, migration, pg_url)
    assert with_rows.returncode == 1, with_rows.stderr
    [(step, error)] = failed(with_rows)
    assert step == scenario.fails
    for words in scenario.says:
        assert words in error, error
    if step == "forward":  # a value in the data made it fail: the hint says what to do
        [hint] = [s.get("hint", "") for r in with_rows.report["results"] for s in r["steps"]
                  if s["ok"] is False]
        assert "It failed on what the tables held" in hint, hint
        assert "seed =" in hint and "--rows 0" in hint
    assert with_rows.report["rows"]["per_model"] == 3
    assert with_rows.report["base"]["rows"]["rows"] >= 3

    without = check(shop, migration, pg_url, "--rows", "0")
    assert without.returncode == 0, without.stdout + without.stderr
    assert failed(without) == []
    assert "rows" not in without.report["base"]


@pytest.mark.parametrize("name", FIXES)
def test_a_fixed_migration_passes_with_and_without_rows(shop: Path, pg_url: str,
                                                         name: str) -> None:
    add_inventory(shop)
    migration = add_scenario(shop, name)
    for extra in ((), ("--rows", "0")):
        run = check(shop, migration, pg_url, *extra)
        assert run.returncode == 0, run.stdout + run.stderr
        assert failed(run) == []
        if extra:
            assert rows_lost(run) == []
    lost = rows_lost(check(shop, migration, pg_url))
    if name in LOSES_ROWS:
        assert len(lost) == 1 and lost[0].startswith("rows of inventory_item not restored"), lost
    else:
        assert lost == []


def test_text_report_names_the_row_and_how_to_reproduce(shop: Path, pg_url: str) -> None:
    add_inventory(shop)
    migration = add_scenario(shop, "cast")
    run = run_guard("check", migration, "--project-dir", shop, "--db", pg_url, "--no-github",
                    "--data-seed", "4")
    assert run.returncode == 1
    assert 'column "code" of inventory_item, row id=' in run.stdout
    assert "--data-seed 4 makes the same rows again, --rows 0 checks without them" in run.stdout
    assert "rows " in run.stderr and "(3 per model, seed 4)" in run.stderr


def test_rows_lost_by_a_rollback_are_a_warning_in_every_report(shop: Path, pg_url: str) -> None:
    add_inventory(shop)
    migration = add_scenario(shop, "not-null-fixed")
    out = shop / "report.xml"
    run = run_guard("check", migration, "--project-dir", shop, "--db", pg_url, "--no-github",
                    "--format", "text", "--format", f"junit={out}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert ("warning: inventory.0002_not_null_fixed: backward: rows of inventory_item not "
            "restored by the rollback") in run.stdout
    assert "rows of inventory_item not restored" in out.read_text()


SEED = '''
def seed(apps, schema_editor):
    Item = apps.get_model("inventory", "Item")
    assert not hasattr(Item, "normalised_label"), "a historical model, not the project's"
    Item.objects.using(schema_editor.connection.alias).create(
        code="A-17", label="seeded", legacy=1)
'''

FIXTURE = [{"model": "inventory.item", "pk": 7,
            "fields": {"code": "B-2", "label": "fixture", "note": None, "legacy": 3}}]


def test_the_projects_own_seed_function_and_fixtures(shop: Path, pg_url: str) -> None:
    add_inventory(shop)
    migration = add_scenario(shop, "cast")
    write(shop / "inventory" / "seeding.py", SEED)
    write(shop / "pyproject.toml",
          '[tool.migration-guard]\nrows = 0\nseed = "inventory.seeding:seed"\n')
    run = check(shop, migration, pg_url)
    [(step, error)] = failed(run)
    assert step == "forward" and 'invalid input syntax for type integer: "A-17"' in error, error
    assert run.report["rows"]["seed_function"] == "inventory.seeding:seed"

    fixture = write(shop / "inventory" / "fixtures" / "items.json", json.dumps(FIXTURE))
    write(shop / "pyproject.toml",
          '[tool.migration-guard]\nrows = 0\nfixtures = ["inventory/fixtures/items.json"]\n')
    run = check(shop, migration, pg_url)
    [(step, error)] = failed(run)
    assert 'row id=7' in error and '"B-2"' in error, error
    assert run.report["base"]["rows"]["notes"] == ["fixture items.json: 1 object(s)"]

    # The cached base covers the fixture's content: digits only, and the cast passes.
    FIXTURE[0]["fields"]["code"] = "12"  # type: ignore[index]
    fixture.write_text(json.dumps(FIXTURE))
    run = check(shop, migration, pg_url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.report["base"]["cached"] is False


def test_bad_row_settings_are_usage_errors(shop: Path, pg_url: str) -> None:
    add_inventory(shop)
    migration = add_scenario(shop, "cast")
    write(shop / "pyproject.toml", '[tool.migration-guard]\nfixtures = ["nowhere.json"]\n')
    run = check(shop, migration, pg_url)
    assert run.returncode == 2 and "fixtures: nowhere.json does not exist" in run.stderr
    write(shop / "pyproject.toml", '[tool.migration-guard]\nseed = "inventory.nothing:seed"\n')
    run = check(shop, migration, pg_url)
    assert run.returncode == 2, run.stderr
    assert 'seed = "inventory.nothing:seed": cannot import it' in run.stderr
    assert "Traceback" not in run.stderr
    run = check(shop, migration, pg_url, "--rows", "-1")
    assert run.returncode == 2 and "--rows must be 0" in run.stderr


def test_the_management_command_and_the_full_run_have_rows(shop: Path, pg_url: str) -> None:
    from tests.test_management_command import install, manage

    add_inventory(install(shop))
    migration = add_scenario(shop, "not-null")
    run = manage(shop, "migration_guard", migration, "--db", pg_url, "--format", "json")
    assert run.returncode == 1, run.stderr
    assert [step for step, _ in failed(run)] == ["forward"]
    run = manage(shop, "migration_guard", migration, "--db", pg_url, "--rows", "0")
    assert run.returncode == 0, run.stdout + run.stderr

    # --full: inventory's two migrations are its last 5, so its base has no inventory table;
    # with --last 1 the first is in the base, gets rows, and the second fails on them.
    full = run_guard("check", "--full", "--last", "1", "--project-dir", shop, "--db", pg_url,
                     "--format", "json", "--no-github")
    assert full.returncode == 1, full.stderr
    assert ("inventory.0002_not_null", "forward") in full.failed_steps()
    assert full.report["base"]["rows"]["tables"] >= 1


HARMLESS = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]
    operations = [migrations.AlterField("item", "label", models.CharField(max_length=60))]
'''

LOSES = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("inventory", "0002_harmless")]
    operations = [
        migrations.AlterField("item", "legacy", models.IntegerField(default=0)),
        migrations.RemoveField("item", "legacy"),
    ]
'''

ADDS = '''
from django.db import migrations


def add(apps, schema_editor):
    apps.get_model("inventory", "Item").objects.create(code="x", label="added", legacy=0)


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]
    operations = [migrations.RunPython(add, migrations.RunPython.noop)]
'''


def test_rows_lost_are_blamed_on_the_rollback_that_lost_them(shop: Path, pg_url: str) -> None:
    from tests.rowsproject import models_py

    add_inventory(shop)
    folder = shop / "inventory" / "migrations"
    harmless = write(folder / "0002_harmless.py", HARMLESS)
    write(folder / "0003_loses.py", LOSES)
    write(shop / "inventory" / "models.py",
          models_py({"label": "models.CharField(max_length=60)", "legacy": None}))
    run = check(shop, harmless, pg_url)
    assert run.returncode == 0, run.stdout + run.stderr
    lost = {r["migration"]: s.get("rows_lost", []) for r in run.report["results"]
            for s in r["steps"] if s["step"] == "backward"}
    # 0003's rollback loses the legacy values; 0002's is compared with what it found, not
    # with before 0003, so it is not blamed for them.
    assert lost == {"inventory.0002_harmless": [], "inventory.0003_loses": [
        "rows of inventory_item not restored by the rollback: the same 3 row(s) in number, with "
        "other contents (values the rollback does not put back)"]}

    (folder / "0003_loses.py").unlink()
    harmless.unlink()
    write(shop / "inventory" / "models.py", models_py({}))
    adds = write(folder / "0002_adds.py", ADDS)
    run = check(shop, adds, pg_url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert rows_lost(run) == ["rows of inventory_item not restored by the rollback: 3 row(s) "
                              "before, 4 after (rows the migration added stay behind)"]


COPIES = '''
from django.db import migrations, models


def copy(apps, schema_editor):
    for item in apps.get_model("inventory", "Item").objects.order_by("pk"):
        item.score = item.legacy
        item.save(update_fields=["score"])


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]
    operations = [
        migrations.AddField("item", "score", models.DecimalField(max_digits=3, decimal_places=1,
                                                                  null=True)),
        migrations.RunPython(copy, migrations.RunPython.noop),
    ]
'''


def test_a_runpython_that_fails_on_a_row_names_its_table_and_row(shop: Path,
                                                                  pg_url: str) -> None:
    from tests.rowsproject import models_py

    add_inventory(shop)
    write(shop / "inventory" / "models.py", models_py(
        {"score": "models.DecimalField(max_digits=3, decimal_places=1, null=True)"}))
    migration = write(shop / "inventory" / "migrations" / "0002_copies.py", COPIES)
    run = check(shop, migration, pg_url)
    [(step, error)] = failed(run)
    # The largest integer does not fit a decimal(3, 1): the save() of the first row fails.
    assert step == "forward"
    assert error.startswith("operation 2 of 2 (Raw Python operation), table inventory_item, "
                            "row id=1: DataError: numeric field overflow"), error
    [result] = run.report["results"]
    assert result["steps"][0]["operation"] == 2
    assert check(shop, migration, pg_url, "--rows", "0").returncode == 0
