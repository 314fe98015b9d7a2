"""The PostgreSQL driver the project has: psycopg2, or psycopg 3 alone (healthchecks has only
psycopg 3)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.guardrun import run_guard, write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]


@pytest.mark.skipif(importlib.util.find_spec("psycopg") is None,
                    reason="psycopg 3 is not installed here (.ci/run's Python 3.12 leg has it)")
def test_a_project_with_psycopg_3_alone_is_checked_and_its_base_cached(
    shop: Path, pg_url: str, tmp_path: Path
) -> None:
    # psycopg2 made impossible to import, as in a virtualenv that never had it.
    write(tmp_path / "blocked" / "psycopg2" / "__init__.py",
          "raise ImportError('psycopg2 is not installed here')\n")
    env = {"PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "blocked"), str(Path(__file__).resolve().parent.parent)])}
    for _ in range(2):  # the first builds and keeps the base (COMMENT ON DATABASE), the second
        run = run_guard(  # clones it
            "check", shop / "orders/migrations/0002_order_status.py", "--project-dir", shop,
            "--db", pg_url, "--format", "json", env=env,
        )
        assert run.returncode == 0, run.stderr
        assert run.report["passed"] is True
    assert run.report["base"]["cached"] is True
