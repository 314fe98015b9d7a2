"""Bad input gets one clear paragraph naming the file or setting, the right exit code, and no
traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guardrun import run_guard, write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]


def full(shop: Path, pg_url: str, *extra: str) -> tuple[int, str]:
    run = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url, *extra)
    assert "Traceback" not in run.stderr
    return run.returncode, run.stderr


def test_syntax_error_in_a_migration(shop: Path, pg_url: str) -> None:
    bad = write(shop / "orders/migrations/0003_bad.py",
                "from django.db import migrations\n\nclass Migration(migrations.Migration)\n")
    code, err = full(shop, pg_url)
    assert code == 1
    assert f"{bad}:3: a migration has a syntax error" in err


def test_migration_importing_a_missing_module(shop: Path, pg_url: str) -> None:
    bad = write(shop / "orders/migrations/0003_bad.py", "import not_installed_anywhere\n")
    code, err = full(shop, pg_url)
    assert code == 1
    assert f"{bad}:1: a migration failed to import" in err
    assert "not_installed_anywhere" in err


def test_dependency_on_a_migration_that_does_not_exist(shop: Path, pg_url: str) -> None:
    bad = write(
        shop / "orders/migrations/0003_bad.py",
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        '    dependencies = [("orders", "0009_nope")]\n',
    )
    code, err = full(shop, pg_url)
    assert code == 1
    assert f"{bad}: orders.0003_bad depends on orders.0009_nope, which does not exist" in err


def test_two_leaves_in_one_app_suggest_a_merge(shop: Path, pg_url: str) -> None:
    write(
        shop / "orders/migrations/0002_other.py",
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        '    dependencies = [("orders", "0001_initial")]\n',
    )
    run = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url, "--format", "json")
    assert run.returncode == 1
    conflicts = next(c for c in run.report["checks"] if c["name"] == "conflicting migrations")
    assert conflicts["errors"] == [
        "orders: conflicting migrations 0002_order_status, 0002_other (more than one leaf)"
    ]
    assert conflicts["hint"] == "Run `python manage.py makemigrations --merge orders`."


def test_settings_that_fail_to_import(shop: Path, pg_url: str) -> None:
    settings = shop / "shop/settings.py"
    settings.write_text(settings.read_text() + "import nothere\n")
    code, err = full(shop, pg_url)
    assert code == 2
    assert f"No module named 'nothere' at {settings}:" in err


def test_not_a_django_project(tmp_path: Path, pg_url: str) -> None:
    code, err = full(tmp_path, pg_url)
    assert code == 2
    assert f"{tmp_path} does not look like a Django project" in err


def test_non_postgresql_engine(shop: Path, pg_url: str) -> None:
    settings = shop / "shop/settings.py"
    settings.write_text(settings.read_text().replace(
        "django.db.backends.postgresql", "django.db.backends.sqlite3"))
    code, err = full(shop, pg_url)
    assert code == 2
    assert "'django.db.backends.sqlite3'. migration-guard tests migrations on PostgreSQL" in err


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://root@localhost/x", "is not a PostgreSQL URL"),
    ("postgres://postgres@127.0.0.1:notaport/x", "has a port that is not a number"),
    ("postgres://postgres@127.0.0.1:1/x", "Cannot connect to PostgreSQL at postgres@127.0.0.1:1"),
])
def test_bad_database_urls(shop: Path, url: str, message: str) -> None:
    code, err = full(shop, url)
    assert code == 2
    assert message in err


def test_unknown_config_key(shop: Path, pg_url: str) -> None:
    write(shop / "pyproject.toml", "[tool.migration-guard]\nlats = 3\n")
    code, err = full(shop, pg_url)
    assert code == 2
    assert f"{shop / 'pyproject.toml'}: unknown key(s) in [tool.migration-guard]: lats" in err


def test_json_report_to_a_file_and_summary_on_stdout(shop: Path, pg_url: str) -> None:
    out = shop / "report.json"
    run = run_guard("check", shop / "orders/migrations/0002_order_status.py", "--project-dir",
                    shop, "--db", pg_url, "--format", "json", "--output", out)
    assert run.returncode == 0, run.stderr
    import json

    data = json.loads(out.read_text())
    assert data["passed"] is True
    assert set(data) >= {"mode", "database", "selected", "results", "checks", "passed"}
    assert run.stdout.startswith("migration-guard passed: 1 of 1 migration(s) passed")
