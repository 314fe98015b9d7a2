"""Django started ahead of git: its start-up overlaps git's work, and what it found is said only
when the run goes on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.gitproject import git, make_repo, migration, setenv
from tests.guardrun import run_guard, write
from tests.processes import processes_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    setenv(monkeypatch, tmp_path)
    work, _ = make_repo(tmp_path)
    git(work, "checkout", "-q", "-b", "feature")
    return work


def phases(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {p["name"] if p["name"] != "waiting" else f"waiting {p['detail']}": p
            for p in report["timings"]}  # type: ignore[attr-defined, index]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked on Linux only")
def test_git_works_while_django_starts(work: Path, pg_url: str) -> None:
    write(work / "orders/migrations/0003_mine.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    run = run_guard("check", "--db", pg_url, "--format", "json", cwd=work)
    assert run.returncode == 0, run.stderr
    assert run.selection() == [("orders.0003_mine", "changed")]
    found = phases(run.report)
    assert found["git"]["parallel"] is True
    assert found["django"]["parallel"] is False
    # The Django side was started ahead: it waited for git's answer (however long it took).
    assert "waiting for git's answer" in found


def test_what_django_would_have_said_is_not_said_when_nothing_is_to_be_checked(
    work: Path, pg_url: str
) -> None:
    settings = work / "shop/settings.py"
    settings.write_text(settings.read_text() + "\nraise RuntimeError('broken settings')\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "--no-gpg-sign", "-m", "broken settings, committed on main")
    git(work, "push", "-q", "origin", "feature:main")
    write(work / "README.txt", "notes\n")
    quiet = run_guard("check", "--db", pg_url, cwd=work)
    assert quiet.returncode == 0, quiet.stderr
    assert "no Python file changed, nothing to check" in quiet.stderr
    assert "broken settings" not in quiet.stderr
    assert not processes_mentioning(str(work))  # the Django side it started is gone

    write(work / "orders/migrations/0003_mine.py",
          migration(("orders", "0002_order_status"), "SELECT 1", "SELECT 1"))
    said = run_guard("check", "--db", pg_url, cwd=work)
    assert said.returncode == 2, said.stderr
    assert "broken settings" in said.stderr
    assert "Traceback" not in said.stderr
