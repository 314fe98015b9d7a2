"""``migration-guard check`` with no PATH: git decides what to test (branch and full modes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitproject import commit_all, git, make_repo, migration, setenv, state
from tests.guardrun import SQUASH, SQUASH_SELECTION, run_guard, write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    setenv(monkeypatch, tmp_path)
    return make_repo(tmp_path)


def check(work: Path, pg_url: str, *extra: str, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    return run_guard("check", "--db", pg_url, "--format", "json", *extra, cwd=cwd or work)


def test_branch_mode_takes_committed_staged_unstaged_and_untracked_changes(
    repo: tuple[Path, Path], pg_url: str
) -> None:
    work, _ = repo
    git(work, "checkout", "-q", "-b", "feature")
    write(work / "orders/migrations/0003_committed.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    commit_all(work, "committed migration")
    write(work / "catalog/migrations/0004_staged.py",
          migration(("catalog", "0003_category"), "SELECT 2", "SELECT 2"))
    git(work, "add", "catalog/migrations/0004_staged.py")
    billing = work / "billing/migrations/0001_initial.py"
    billing.write_text(billing.read_text().replace(
        "    operations = [",
        "    operations = [\n        migrations.RunSQL('SELECT 3', 'SELECT 3'),"))
    write(work / "orders/migrations/0004_untracked.py",
          migration(("orders", "0003_committed"), "SELECT 4", "SELECT 4"))
    # Only a comment and formatting: unchanged in meaning, not selected.
    initial = work / "catalog/migrations/0001_initial.py"
    initial.write_text("# Copyright the shop\n" + initial.read_text().replace("[]", "[\n    ]"))
    before = state(work)

    run = check(work, pg_url)
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "branch"
    assert run.selection() == [
        ("billing.0001_initial", "changed"),
        ("catalog.0004_staged", "changed"),
        ("orders.0003_committed", "changed"),
        ("orders.0004_untracked", "changed"),
    ]
    assert "orders.0003_committed  changed on this branch" in run.stderr
    notes = "\n".join(run.report["notes"])
    base = git(work, "merge-base", "HEAD", "origin/main")
    assert f"against origin/main (origin/HEAD), merge-base {base[:10]}" in notes
    assert "unchanged in meaning" in notes and "catalog/migrations/0001_initial.py" in notes
    assert state(work) == before

    every_edit = check(work, pg_url, "--no-semantic-diff")
    assert every_edit.returncode == 0, every_edit.stderr
    assert ("catalog.0001_initial", "changed") in every_edit.selection()
    assert len(every_edit.selection()) == 9  # catalog.0001 pulls in all the project's others


def test_an_untracked_virtualenv_in_the_working_tree_is_not_the_projects_code(
    repo: tuple[Path, Path], pg_url: str
) -> None:
    """Seen on django-oscar: a .venv in the repository that its .gitignore does not name put
    Django's own migrations (and every other installed file) in the selection."""
    work, _ = repo
    git(work, "checkout", "-q", "-b", "feature")
    (work / ".gitignore").write_text("__pycache__/\n")  # .venv is not ignored any more
    env = work / "env"
    write(env / "pyvenv.cfg", "home = /usr/bin\n")
    installed = env / "lib/python3.11/site-packages/django/contrib/auth/migrations"
    write(installed / "0001_initial.py", "# Django's own\n")
    write(env / "lib/python3.11/site-packages/six.py", "# a package\n")
    write(work / "orders/migrations/0003_mine.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    run = check(work, pg_url)
    assert run.returncode == 0, run.stderr
    assert run.selection() == [("orders.0003_mine", "changed")]
    assert run.report["ignored"] == []
    notes = "\n".join(run.report["notes"])
    assert "3 changed file(s) in the Python environment env" in notes

    # With nothing of the project's changed, there is nothing to check.
    (work / "orders/migrations/0003_mine.py").unlink()
    commit_all(work, "ignore pycache only")
    nothing = check(work, pg_url)
    assert nothing.returncode == 0, nothing.stderr
    assert "no Python file changed, nothing to check" in nothing.stderr


def test_no_python_change_costs_nothing(repo: tuple[Path, Path], pg_url: str) -> None:
    work, _ = repo
    git(work, "checkout", "-q", "-b", "docs")
    write(work / "README.txt", "notes\n")
    run = run_guard("check", "--db", pg_url, cwd=work)
    assert run.returncode == 0, run.stderr
    assert "no Python file changed, nothing to check" in run.stderr
    assert "settings" not in run.stderr  # Django was not even started


def test_python_change_without_migration_checks_models_only(
    repo: tuple[Path, Path], pg_url: str
) -> None:
    work, _ = repo
    git(work, "checkout", "-q", "-b", "models")
    models = work / "orders/models.py"
    models.write_text(models.read_text() + "    note = models.TextField(blank=True)\n")
    run = check(work, pg_url)
    assert run.returncode == 1, run.stderr
    assert run.selection() == []
    assert run.report["database"]["provider"] == "none"
    failed = [c["name"] for c in run.report["checks"] if not c["ok"]]
    assert failed == ["models match migrations"]


def test_ci_runs_the_full_mode(repo: tuple[Path, Path], pg_url: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    work, _ = repo
    run = run_guard("check", "--db", pg_url, "--format", "json", "--last", "1", cwd=work,
                    env={"CI": "true"})
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "full"
    assert "full mode: running in CI (CI=true" in "\n".join(run.report["notes"])
    assert run.selection() == [
        ("billing.0001_initial", "last-N"),
        ("catalog.0003_category", "last-N"),
        ("orders.0002_order_status", "last-N"),
    ]


def test_shallow_clone_falls_back_to_full(repo: tuple[Path, Path], tmp_path: Path,
                                          pg_url: str) -> None:
    work, origin = repo
    git(work, "checkout", "-q", "-b", "feature")
    write(work / "orders/migrations/0003_x.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    commit_all(work, "x")
    git(work, "push", "-q", "origin", "feature")
    shallow = tmp_path / "shallow"
    for args in (["--no-single-branch"], []):
        shallow = tmp_path / f"shallow{len(args)}"
        git(tmp_path, "clone", "-q", "--depth", "1", *args, "--branch", "feature",
            f"file://{origin}", str(shallow))
        run = run_guard("check", "--db", pg_url, "--format", "json", "--last", "1",
                        cwd=shallow)
        assert run.returncode == 0, run.stderr
        assert run.report["mode"] == "full"
        assert "full mode: shallow clone" in "\n".join(run.report["notes"])


def test_no_remote_uses_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             pg_url: str) -> None:
    setenv(monkeypatch, tmp_path)
    work, _ = make_repo(tmp_path)
    git(work, "remote", "remove", "origin")
    git(work, "checkout", "-q", "-b", "feature")
    write(work / "orders/migrations/0003_x.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    run = check(work, pg_url)
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "branch"
    assert run.selection() == [("orders.0003_x", "changed")]
    assert "against main" in "\n".join(run.report["notes"])


def test_detached_head_compares_with_the_base(repo: tuple[Path, Path], pg_url: str) -> None:
    work, _ = repo
    git(work, "checkout", "-q", "-b", "feature")
    write(work / "orders/migrations/0003_x.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    commit_all(work, "x")
    git(work, "checkout", "-q", "--detach", "HEAD")
    run = check(work, pg_url)
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "branch"
    assert run.selection() == [("orders.0003_x", "changed")]


def test_single_commit_repository_without_changes_has_nothing_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    setenv(monkeypatch, tmp_path)
    work, _ = make_repo(tmp_path)
    git(work, "remote", "remove", "origin")
    run = run_guard("check", "--db", pg_url, cwd=work)
    assert run.returncode == 0, run.stderr
    assert "nothing to check" in run.stderr


def test_not_a_git_repository_falls_back_to_full(shop: Path, pg_url: str,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    setenv(monkeypatch, tmp_path)
    run = run_guard("check", "--db", pg_url, "--format", "json", "--last", "1", cwd=shop)
    assert run.returncode == 0, run.stderr
    assert run.report["mode"] == "full"
    assert "is not in a git repository" in "\n".join(run.report["notes"])
    changed = run_guard("check", "--db", pg_url, "--mode", "changed", cwd=shop)
    assert changed.returncode == 2
    assert "not inside a git repository" in changed.stderr


def test_unknown_base_is_a_usage_error(repo: tuple[Path, Path], pg_url: str) -> None:
    work, _ = repo
    run = run_guard("check", "--db", pg_url, "--base", "origin/nope", cwd=work)
    assert run.returncode == 2
    assert "origin/nope" in run.stderr
    assert "Traceback" not in run.stderr


FULL_LAST_1 = [
    ("billing.0001_initial", "last-N"),
    ("catalog.0003_category", "last-N"),
    ("orders.0002_order_status", "last-N"),
]


def test_full_fallbacks_select_the_last_n(repo: tuple[Path, Path], pg_url: str,
                                          shop: Path) -> None:
    # Outside git, and in CI: the same full selection.
    for cwd, env in ((shop, {}), (repo[0], {"GITHUB_ACTIONS": "true"})):
        run = run_guard("check", "--db", pg_url, "--format", "json", "--last", "1", cwd=cwd,
                        env=env)
        assert run.returncode == 0, run.stderr
        assert run.selection() == FULL_LAST_1


def test_deleting_a_migration_others_depend_on_fails_naming_both(
    repo: tuple[Path, Path], pg_url: str
) -> None:
    work, _ = repo
    git(work, "checkout", "-q", "-b", "feature")
    git(work, "rm", "-q", "orders/migrations/0002_order_status.py")
    write(work / "orders/migrations/0003_after.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    run = run_guard("check", "--db", pg_url, cwd=work)
    assert run.returncode == 1, run.stderr
    assert (
        f"orders.0002_order_status ({work}/orders/migrations/0002_order_status.py) is deleted "
        "by this change, but orders.0003_after"
    ) in run.stderr
    assert "Traceback" not in run.stderr




def test_deleting_migrations_a_squash_replaces_is_fine(
    repo: tuple[Path, Path], pg_url: str
) -> None:
    work, _ = repo
    git(work, "checkout", "-q", "-b", "squash")
    write(work / "catalog/migrations/0001_squashed_0002_product_sku.py", SQUASH)
    commit_all(work, "squash")
    git(work, "rm", "-q", "catalog/migrations/0001_initial.py")
    run = check(work, pg_url)
    assert run.returncode == 0, run.stderr
    assert run.selection() == SQUASH_SELECTION
    assert ("deleted catalog.0001_initial: replaced by the squashed "
            "catalog.0001_squashed_0002_product_sku, fine") in run.report["notes"]


def test_files_in_migrations_folders_that_are_not_migrations_are_listed_and_skipped(
    repo: tuple[Path, Path], pg_url: str
) -> None:
    work, _ = repo
    git(work, "checkout", "-q", "-b", "helpers")
    helper = write(work / "orders/migrations/_helpers.py", "def noop(*args):\n    pass\n")
    stray = write(work / "legacy/migrations/0001_initial.py",
                  "from django.db import migrations\n\n\n"
                  "class Migration(migrations.Migration):\n    pass\n")
    write(work / "orders/utils.py", "X = 1\n")
    run = check(work, pg_url)
    assert run.returncode == 0, run.stderr
    assert run.selection() == []
    assert run.report["ignored"] == [
        {"path": str(stray), "reason": "not a migration of an installed app"},
        {"path": str(helper), "reason": "not a migration of an installed app"},
    ]
