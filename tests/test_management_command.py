"""``python manage.py migration_guard``: the check as a Django management command, in the
project's own process, with ``"guard.contrib.django"`` in INSTALLED_APPS."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guard.database.server import Server
from guard.main import _add_check_options
from guard.selection.changes import CI_VARIABLES
from tests.conftest import REPO
from tests.gitproject import commit_all, git, make_repo, migration, setenv, state
from tests.guardrun import Run, run_guard, write
from tests.test_check import LEFTOVER
from tests.test_providers import owned_database, rows, settings_env
from tests.test_safety import PRECIOUS, settled

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

__all__ = ["owned_database"]  # the fixture, used by name

STATUS = "orders/migrations/0002_order_status.py"


def install(project: Path, *apps: str) -> Path:
    """Add ``guard.contrib.django`` (and ``apps``) to the project's INSTALLED_APPS."""
    settings = project / "shop/settings.py"
    text = settings.read_text(encoding="utf-8")
    added = "".join(f'    "{app}",\n' for app in ("guard.contrib.django", *apps))
    assert '    "billing",\n]' in text
    settings.write_text(text.replace('    "billing",\n]', f'    "billing",\n{added}]'),
                        encoding="utf-8")
    return project


def manage(project: Path, *args: str | Path, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> Run:
    """``python manage.py ...`` in ``project`` as a developer runs it: no DJANGO_SETTINGS_MODULE
    (manage.py sets it), migration-guard importable from this checkout, outside CI."""
    environ = {
        k: v for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "MIGRATION_GUARD_DATABASE_URL", *CI_VARIABLES)
        and not k.startswith(("PRE_COMMIT", "GITHUB_"))
    }
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), environ.get("PYTHONPATH", "")) if p
    )
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(project / "manage.py"), *map(str, args)],
        cwd=cwd or project, env=environ, capture_output=True, text=True, timeout=300,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def test_paths_give_the_same_selection_as_check(shop: Path, pg_url: str) -> None:
    run = manage(install(shop), "migration_guard", STATUS, "--db", pg_url, "--format", "json")
    assert run.returncode == 0, run.stderr
    assert run.selection() == [("orders.0002_order_status", "changed")]
    assert run.report["passed"] is True
    assert run.report["mode"] == "paths"
    assert run.report["project"] == {"dir": str(shop.resolve()), "settings": "shop.settings"}
    assert run.report["database"]["provider"] == "url"
    assert "settings shop.settings, from the running Django" in run.stderr
    steps = [s["step"] for s in run.report["results"][0]["steps"]]
    assert steps == ["forward", "backward", "forward-again"]
    # The CLI selects the same.
    cli = run_guard("check", shop / STATUS, "--project-dir", shop, "--db", pg_url,
                    "--format", "json")
    assert cli.returncode == 0, cli.stderr
    assert cli.selection() == run.selection()


def test_a_failing_migration_exits_1_and_is_named(shop: Path, pg_url: str) -> None:
    path = write(install(shop) / "orders/migrations/0003_leftover.py", LEFTOVER)
    run = manage(shop, "migration_guard", path, "--db", pg_url, "--format", "json")
    assert run.returncode == 1, run.stderr
    assert run.failed_steps() == [
        ("orders.0003_leftover", "backward"),
        ("orders.0003_leftover", "forward-again"),
    ]
    # A path relative to the current folder, the text report.
    text = manage(shop, "migration_guard", "0003_leftover.py", "--db", pg_url,
                  cwd=shop / "orders/migrations")
    assert text.returncode == 1, text.stderr
    assert "orders.0003_leftover" in text.stdout
    assert "orders_audit" in text.stdout


def test_full_run_with_last(shop: Path, pg_url: str) -> None:
    run = manage(install(shop), "migration_guard", "--full", "--last", "1", "--db", pg_url,
                 "--format", "json")
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "full"
    assert sorted(run.selection()) == [
        ("billing.0001_initial", "last-N"),
        ("catalog.0003_category", "last-N"),
        ("orders.0002_order_status", "last-N"),
    ]
    assert all(check["ok"] for check in run.report["checks"]), run.report["checks"]
    cli = run_guard("check", "--full", "--last", "1", "--project-dir", shop, "--db", pg_url,
                    "--format", "json")
    assert cli.returncode == 0, cli.stderr
    assert cli.selection() == run.selection()


def test_the_projects_own_database_is_left_alone(
    shop: Path, pg_server: Server, owned_database: str
) -> None:
    env = settings_env(pg_server, owned_database)
    assert rows(pg_server, owned_database) == PRECIOUS  # (reading it counts, so first)
    before = settled(pg_server, owned_database)
    run = manage(install(shop), "migration_guard", STATUS, "--db", "settings",
                 "--format", "json", env=env)
    assert run.returncode == 0, run.stderr
    assert run.report["database"]["provider"] == "settings"
    assert run.selection() == [("orders.0002_order_status", "changed")]
    assert settled(pg_server, owned_database) == before
    assert rows(pg_server, owned_database) == PRECIOUS


WARM_UP = '''
from django.apps import AppConfig
from django.core import checks
from django.db import connection


class WarmUpConfig(AppConfig):
    name = "warmup"

    def ready(self):
        # The project's start-up reads its own database: the connection is open when the
        # command starts.
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM precious")
        checks.register(write_when_checked)


def write_when_checked(app_configs, **kwargs):
    """A system check that writes to whatever database it reaches (it should reach none)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO precious VALUES (3)")
    except Exception:
        pass
    return []
'''


def test_a_connection_the_start_up_opened_is_not_used(
    shop: Path, pg_server: Server, owned_database: str
) -> None:
    """The project's start-up connected to its own database before the command ran; the
    command's system checks (one of the project's writes) run before our database is ready."""
    write(shop / "warmup/__init__.py", "")
    write(shop / "warmup/apps.py", WARM_UP)
    install(shop, "warmup.apps.WarmUpConfig")
    # No cached base: building one would reconnect before the checks run, hiding the case.
    write(shop / "pyproject.toml", "[tool.migration-guard]\ncache_size = 0\n")
    env = settings_env(pg_server, owned_database)
    before = settled(pg_server, owned_database)
    run = manage(shop, "migration_guard", STATUS, "--db", "settings", "--format", "json",
                 env=env)
    assert run.returncode == 0, run.stderr
    assert run.selection() == [("orders.0002_order_status", "changed")]
    after = settled(pg_server, owned_database)
    # (xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched): the
    # start-up's read counts; nothing was written, and the tables are the project's.
    reached = int(str(after[0])) > int(str(before[0]))
    assert reached, "the start-up did not reach its database: the test proves nothing"
    assert after[2:5] == before[2:5]
    assert rows(pg_server, owned_database) == PRECIOUS


IN_PROCESS = '''
import io, json, os, sys

os.environ["DJANGO_SETTINGS_MODULE"] = "shop.settings"
import django

django.setup()
from django.core.management import call_command
from django.db import connections

reports = []
for _ in range(2):
    out = io.StringIO()
    call_command("migration_guard", "orders/migrations/0002_order_status.py", db=sys.argv[1],
                 format=["json"], stdout=out)
    reports.append(json.loads(out.getvalue()))
opened = [c.alias for c in connections.all(initialized_only=True) if c.connection is not None]
entry = connections["default"].settings_dict
print(json.dumps({"reports": reports, "name": entry["NAME"], "port": entry["PORT"],
                  "atomic_requests": entry["ATOMIC_REQUESTS"], "open": opened}))
'''


def test_call_command_writes_to_its_stdout_and_puts_the_settings_back(
    shop: Path, pg_url: str
) -> None:
    """From the project's own code: the report goes to call_command's stdout, and afterwards
    DATABASES are the project's again (Django's defaults kept), with no connection open."""
    write(install(shop) / "twice.py", IN_PROCESS)
    environ = {k: v for k, v in os.environ.items()
               if k not in ("DJANGO_SETTINGS_MODULE", *CI_VARIABLES)}
    environ.update(PYTHONPATH=str(REPO), SHOP_DB_PORT="1")
    done = subprocess.run([sys.executable, "twice.py", pg_url], cwd=shop, env=environ,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for report in result["reports"]:
        assert report["passed"] is True
        assert [s["migration"] for s in report["selected"]] == ["orders.0002_order_status"]
    assert (result["name"], result["port"]) == ("shop", "1")
    assert result["atomic_requests"] is False
    assert result["open"] == []


def check_flags() -> list[str]:
    scratch = argparse.ArgumentParser(add_help=False)
    _add_check_options(scratch)
    return [
        flag for action in scratch._actions for flag in action.option_strings
        if flag.startswith("--")
    ]


def test_help_lists_the_options_of_check(shop: Path) -> None:
    run = manage(install(shop), "help", "migration_guard", env={"SHOP_DB_PORT": "1"})
    assert run.returncode == 0, run.stderr
    flags = check_flags()
    assert {"--full", "--last", "--db", "--format", "--mode", "--no-semantic-diff"} <= set(flags)
    for flag in flags:
        if flag == "--project-dir":
            assert flag not in run.stdout
        else:
            assert flag in run.stdout, flag  # --settings is Django's own
    assert "PATH" in run.stdout
    assert "--verbosity" in run.stdout


def test_every_option_of_check_reaches_the_check() -> None:
    """An option added to ``check`` must be forwarded by the command too (or refused)."""
    from guard.contrib.django.management.commands import migration_guard

    defaults = migration_guard.check_option_defaults()
    assert set(defaults) - migration_guard.NOT_HERE <= set(migration_guard.FORWARDED)


def test_django_is_happy_with_the_app(shop: Path) -> None:
    """No models, no migrations: ``check`` and ``makemigrations --check`` pass (the project's
    server is unreachable, so neither can reach a database)."""
    install(shop)
    env = {"SHOP_DB_PORT": "1"}
    checked = manage(shop, "check", env=env)
    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues" in checked.stdout
    made = manage(shop, "makemigrations", "--check", "--dry-run", env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "No changes detected" in made.stdout


def test_usage_errors_exit_2(shop: Path) -> None:
    install(shop)
    env = {"SHOP_DB_PORT": "1"}
    bad = manage(shop, "migration_guard", STATUS, "--last", "0", env=env)
    assert bad.returncode == 2
    assert "--last must be at least 1" in bad.stderr
    unknown = manage(shop, "migration_guard", STATUS, "--project-dir", ".", env=env)
    assert unknown.returncode == 2
    assert "unrecognized arguments: --project-dir" in unknown.stderr
    other = manage(shop, "migration_guard", "--full", "--db", "postgres://x@host:notaport/db",
                   env=env)
    assert other.returncode == 2, other.stderr
    assert "Traceback" not in other.stderr


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A work tree of the example project with the command installed, on main, pushed."""
    setenv(monkeypatch, tmp_path)
    work, _ = make_repo(tmp_path)
    install(work)
    commit_all(work, "migration-guard's command")
    git(work, "push", "-q", "origin", "main")
    return work


def test_branch_mode_without_paths(repo: Path, pg_url: str) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo / "orders/migrations/0003_note.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    before = state(repo)
    run = manage(repo, "migration_guard", "--db", pg_url, "--format", "json")
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "branch"
    assert run.selection() == [("orders.0003_note", "changed")]
    assert "against origin/main" in "\n".join(run.report["notes"])
    assert state(repo) == before

    ci = manage(repo, "migration_guard", "--last", "1", "--db", pg_url, "--format", "json",
                env={"CI": "true"})
    assert ci.returncode == 0, ci.stderr
    assert ci.report["mode"] == "full"
    assert "full mode: running in CI (CI=true is set)" in ci.report["notes"]


def test_no_python_change_is_said_and_passes(repo: Path, pg_url: str) -> None:
    git(repo, "checkout", "-q", "-b", "docs")
    write(repo / "README.txt", "notes\n")
    run = manage(repo, "migration_guard", "--db", pg_url)
    assert run.returncode == 0, run.stderr
    assert "no Python file changed, nothing to check" in run.stderr


def test_push_mode_tests_the_checked_out_commit_only(repo: Path, pg_url: str) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo / "orders/migrations/0003_note.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    head = commit_all(repo, "note")
    pushed = {"PRE_COMMIT_FROM_REF": base, "PRE_COMMIT_TO_REF": head}
    run = manage(repo, "migration_guard", "--db", pg_url, "--format", "json", env=pushed)
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "push"
    assert run.selection() == [("orders.0003_note", "changed")]

    # Another commit than the one this process runs: not from here.
    git(repo, "checkout", "-q", "main")
    elsewhere = manage(repo, "migration_guard", "--db", pg_url, env=pushed)
    assert elsewhere.returncode == 2, elsewhere.stderr
    assert "run `migration-guard check`" in elsewhere.stderr
