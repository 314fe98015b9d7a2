"""More bad input and hostile environments, end to end through the real command: each ends with
the right exit code and, for an error, one paragraph naming the file, migration or setting,
never a traceback."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from guard.database.binaries import find_binaries
from guard.database.cluster import LocalCluster
from guard.database.server import connect_maintenance
from guard.errors import FatalError
from tests.gitproject import commit_all, git, make_repo, migration, setenv
from tests.guardrun import Run, run_guard, write
from tests.processes import processes_using
from tests.test_git_modes import FULL_LAST_1

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

MIGRATION = "catalog/migrations/0003_category.py"


def no_traceback(run: Run) -> Run:
    assert "Traceback" not in run.stderr, run.stderr
    assert "Traceback" not in run.stdout, run.stdout
    return run


def error_paragraph(run: Run) -> str:
    """The one error message of a failed run (a single line: one paragraph)."""
    no_traceback(run)
    lines = [line for line in run.stderr.splitlines() if line.startswith("migration-guard: error:")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def local_env(scratch: Path) -> dict[str, str]:
    return {"TMPDIR": str(scratch), "MIGRATION_GUARD_CACHE_DIR": str(scratch / "cache")}


# -- settings --------------------------------------------------------------------------------------

def test_no_settings_module_anywhere_says_how_to_give_one(shop: Path, pg_url: str) -> None:
    manage = shop / "manage.py"
    manage.write_text(manage.read_text().replace(
        '    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")\n', ""))
    assert "DJANGO_SETTINGS_MODULE" not in manage.read_text()
    run = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url)
    assert run.returncode == 2
    message = error_paragraph(run)
    assert (f"No Django settings module found for {shop}: manage.py does not set "
            "DJANGO_SETTINGS_MODULE. Pass --settings MODULE, set DJANGO_SETTINGS_MODULE, or add "
            'settings = "..." to [tool.migration-guard] in pyproject.toml.') in message


# -- MIGRATION_MODULES -----------------------------------------------------------------------------

def _settings_with(shop: Path, extra: str, *, drop_app: str | None = None) -> None:
    settings = shop / "shop/settings.py"
    text = settings.read_text()
    if drop_app:
        assert f'    "{drop_app}",\n' in text
        text = text.replace(f'    "{drop_app}",\n', "")
    settings.write_text(text + "\n" + extra + "\n")


def test_a_migration_of_an_app_whose_migrations_are_disabled_is_explained(
    shop: Path, pg_url: str
) -> None:
    # billing's migrations depend on orders': with orders' migrations off, billing goes too.
    _settings_with(shop, 'MIGRATION_MODULES = {"orders": None}', drop_app="billing")
    disabled = shop / "orders/migrations/0002_order_status.py"
    run = no_traceback(run_guard("check", disabled, shop / MIGRATION, "--project-dir", shop,
                                 "--db", pg_url, "--format", "json"))
    assert run.returncode == 0, run.stderr
    assert run.selection() == [("catalog.0003_category", "changed")]
    reason = ("migrations of app 'orders' are disabled by MIGRATION_MODULES ('orders': None), "
              "so Django never loads this file")
    assert run.report["ignored"] == [{"path": str(disabled), "reason": reason}]
    assert f"warning: ignored {disabled}: {reason}" in run.stderr


def test_migrations_moved_by_migration_modules_are_found_and_a_stale_copy_explained(
    shop: Path, pg_url: str
) -> None:
    _settings_with(shop, 'MIGRATION_MODULES = {"orders": "orders.db_migrations"}')
    old, new = shop / "orders/migrations", shop / "orders/db_migrations"
    shutil.copytree(old, new)
    for leftover in old.iterdir():
        if leftover.name not in ("__init__.py", "0002_order_status.py"):
            leftover.unlink()
    moved, stale = new / "0002_order_status.py", old / "0002_order_status.py"
    run = no_traceback(run_guard("check", moved, stale, "--project-dir", shop, "--db", pg_url,
                                 "--format", "json"))
    assert run.returncode == 0, run.stderr
    assert run.selection() == [("orders.0002_order_status", "changed")]
    assert [r["file"] for r in run.report["results"]] == [str(moved)]
    reason = ("app 'orders' takes its migrations from 'orders.db_migrations' (MIGRATION_MODULES "
              "{'orders': 'orders.db_migrations'}), not from this folder: a stale file Django "
              "never loads")
    assert run.report["ignored"] == [{"path": str(stale), "reason": reason}]


# -- the server ------------------------------------------------------------------------------------

PASSWORD = "wr0ng-pa55-7c1e"  # pragma: allowlist secret
RIGHT = "r1ght-pa55-93ab"  # pragma: allowlist secret


def test_a_wrong_password_is_reported_without_the_password(shop: Path, scratch: Path) -> None:
    with LocalCluster.start(scratch) as local:
        conn = connect_maintenance(local.server)
        try:
            conn.cursor().execute(f"ALTER ROLE postgres PASSWORD '{RIGHT}'")
            (local.data_dir / "pg_hba.conf").write_text("local all all scram-sha-256\n")
            conn.cursor().execute("SELECT pg_reload_conf()")
        finally:
            conn.close()
        socket, port = local.server.host, local.server.port
        url = f"postgres://postgres:{PASSWORD}@/postgres?host={socket}&port={port}"
        deadline = time.monotonic() + 10  # the reload is asynchronous
        while time.monotonic() < deadline:
            try:
                connect_maintenance(local.server).close()
            except FatalError:
                break
            time.sleep(0.05)
        run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", url,
                        "--format", "json")
        assert run.returncode == 2, run.stderr
        message = error_paragraph(run)
        assert "password authentication failed for user \"postgres\"" in message
        assert f"postgres@{socket}" in message
        assert PASSWORD not in run.stderr + run.stdout
        # A malformed URL with a password is shown with the password masked.
        bad = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db",
                        f"postgres://postgres:{PASSWORD}@127.0.0.1:notaport/x")
        assert bad.returncode == 2
        assert "postgres://postgres:***@127.0.0.1:notaport/x" in error_paragraph(bad)
        assert PASSWORD not in bad.stderr + bad.stdout


def test_pg_bindir_is_the_only_folder_tried(shop: Path, scratch: Path) -> None:
    empty = scratch / "no postgres here"
    empty.mkdir()
    config = write(shop / "pyproject.toml", f'[tool.migration-guard]\npg_bindir = "{empty}"\n')
    run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", "local",
                    env=local_env(scratch))
    assert run.returncode == 2, run.stderr
    message = error_paragraph(run)
    assert (f"--db local: pg_bindir = '{empty}' in [tool.migration-guard], but {empty} does not "
            "hold the PostgreSQL server programs initdb, pg_ctl and postgres") in message
    assert not (scratch / "cache").exists()  # never replaced by binaries found elsewhere
    # The right folder, given relative to pyproject.toml, is used.
    real = find_binaries()
    assert real is not None
    config.write_text(f'[tool.migration-guard]\npg_bindir = "{os.path.relpath(real, shop)}"\n')
    good = no_traceback(run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db",
                                  "local", "--format", "json", env=local_env(scratch)))
    assert good.returncode == 0, good.stderr
    assert good.report["database"]["reason"].startswith(f"local cluster from {real} in ")
    assert processes_using(scratch) == []


def test_no_docker_on_path_is_reported(shop: Path, scratch: Path) -> None:
    empty_path = scratch / "bin"
    empty_path.mkdir()
    run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", "docker",
                    env={"PATH": str(empty_path)})
    assert run.returncode == 2, run.stderr
    assert ("--db docker: the `docker` command is missing or no Docker engine answers "
            "(`docker info` failed). Start Docker, or use --db local / --db URL.") \
        in error_paragraph(run)


# -- git -------------------------------------------------------------------------------------------

def test_a_repository_without_commits_runs_the_full_mode(
    shop: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setenv(monkeypatch, tmp_path)
    git(shop, "init", "-q")
    run = no_traceback(run_guard("check", "--db", pg_url, "--format", "json", "--last", "1",
                                 cwd=shop))
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "full"
    assert "full mode: the repository has no commits yet" in run.report["notes"]
    assert run.selection() == FULL_LAST_1
    assert git(shop, "rev-parse", "--verify", "-q", "HEAD", check=False) == ""


def test_paths_with_spaces_and_non_ascii_letters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    setenv(monkeypatch, tmp_path)
    work, _ = make_repo(tmp_path, "my shop ü")
    git(work, "checkout", "-q", "-b", "notiz")
    note = write(work / "orders/migrations/0003_notiz_über.py",
                 migration(("orders", "0002_order_status"), "SELECT 'über'", "SELECT 'zurück'"))
    expected = [("orders.0003_notiz_über", "changed")]

    paths = no_traceback(run_guard("check", note, "--project-dir", work, "--db", pg_url,
                                   "--format", "json"))
    assert paths.returncode == 0, paths.stderr
    assert paths.selection() == expected
    assert paths.report["results"][0]["file"] == str(note)

    branch = no_traceback(run_guard("check", "--db", pg_url, "--format", "json", cwd=work))
    assert branch.returncode == 0, branch.stderr
    assert branch.report["mode"] == "branch"
    assert branch.selection() == expected

    commit_all(work, "Notiz über Bestellungen")
    committed = no_traceback(run_guard("check", "--db", pg_url, "--format", "json",
                                       cwd=work / "orders"))
    assert committed.returncode == 0, committed.stderr
    assert committed.selection() == expected


def test_thousands_of_changed_files_select_only_the_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    setenv(monkeypatch, tmp_path)
    work, _ = make_repo(tmp_path)
    git(work, "checkout", "-q", "-b", "big")
    for i in range(1500):
        write(work / f"orders/generated/part{i // 100}/mod_{i:04d}.py", f"X = {i}\n")
    commit_all(work, "generated code")
    for i in range(1500, 3000):  # untracked
        write(work / f"catalog/generated/part{i // 100}/mod_{i:04d}.py", f"X = {i}\n")
    write(work / "orders/migrations/0003_x.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    started = time.monotonic()
    run = no_traceback(run_guard("check", "--db", pg_url, "--format", "json", cwd=work))
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "branch"
    assert run.selection() == [("orders.0003_x", "changed")]
    assert run.report["ignored"] == []
    assert time.monotonic() - started < 60


LEDGER_MIGRATIONS = 400
HEADER = "# Copyright 2024 The Shop Authors. Licensed under the Apache License 2.0.\n"


def test_a_licence_header_on_hundreds_of_migrations_selects_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    setenv(monkeypatch, tmp_path)
    work, _ = make_repo(tmp_path)
    # A fourth app with a long chain of migrations, on main.
    write(work / "ledger/__init__.py", "")
    folder = work / "ledger/migrations"
    write(folder / "__init__.py", "")
    files = []
    for i in range(1, LEDGER_MIGRATIONS + 1):
        after = f'("ledger", "{i - 1:04d}_step")' if i > 1 else ""
        files.append(write(
            folder / f"{i:04d}_step.py",
            "from django.db import migrations\n\n\n"
            "class Migration(migrations.Migration):\n"
            f"    dependencies = [{after}]\n\n"
            f"    operations = [migrations.RunSQL('SELECT {i}', 'SELECT {i}')]\n",
        ))
    settings = work / "shop/settings.py"
    settings.write_text(settings.read_text().replace('    "billing",\n',
                                                     '    "billing",\n    "ledger",\n'))
    commit_all(work, "ledger")
    git(work, "push", "-q", "origin", "main")

    git(work, "checkout", "-q", "-b", "licence")
    touched = sorted([*files, folder / "__init__.py"])
    for path in touched:
        path.write_text(HEADER + path.read_text(encoding="utf-8"), encoding="utf-8")
    commit_all(work, "licence headers")
    run = no_traceback(run_guard("check", "--db", pg_url, "--format", "json", cwd=work))
    assert run.returncode == 0, run.stderr
    assert run.selection() == []
    # The package's __init__.py only got the header too: unchanged in meaning, nothing to list.
    assert run.report["ignored"] == []
    assert run.report["database"]["provider"] == "none"
    note = next(n for n in run.report["notes"] if "unchanged in meaning" in n)
    assert note.startswith(
        f"{LEDGER_MIGRATIONS + 1} modified file(s) in migrations folders unchanged in meaning"
    )
    listed = note.split("not selected: ", 1)[1].split(", ")
    assert sorted(listed) == sorted(str(p.relative_to(work)) for p in touched)


def orders_migration(shop: Path, name: str, imports: str, top: str) -> Path:
    """An empty migration ``orders.<name>`` after 0002 whose module runs ``top`` (line 3)
    when it is imported."""
    return write(shop / f"orders/migrations/{name}.py", (
        f"{imports}\n\n{top}\n\n\n"
        "class Migration(migrations.Migration):\n"
        '    dependencies = [("orders", "0002_order_status")]\n'
        "    operations = []\n"
    ))


def test_a_migration_that_queries_the_database_when_imported_runs(
    shop: Path, pg_url: str
) -> None:
    # taiga-back's projects.0046 reads the server version at import time to pick its SQL:
    # `manage.py migrate` runs it, and so does the check (see tests/test_import_queries.py).
    # (taiga asks psycopg2's connection; Django's pg_version works with either driver.)
    orders_migration(shop, "0003_versioned", "from django.db import connection, migrations",
                     "pg_version = connection.pg_version")
    run = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url)
    assert run.returncode == 0, run.stderr
    no_traceback(run)


def test_a_migration_whose_top_level_code_raises_is_named(shop: Path, pg_url: str) -> None:
    path = orders_migration(shop, "0003_raises", "from django.db import migrations",
                            "LIMIT = {}['missing']")
    run = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url)
    assert run.returncode == 1, run.stderr
    message = error_paragraph(run)
    assert f"{path}:3: a migration raised KeyError when it was imported" in message
