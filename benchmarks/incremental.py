"""What the branch check costs after main moved: the cached base grows instead of being rebuilt.

Run it from the repository root with the project's virtualenv (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/incremental.py --migrations 300 --repeat 5

It generates the synthetic project of ``benchmarks/run.py`` (its feature branch adds one
migration to ``app5``) and fills the cache with one branch check. Then, each round: main gains
three migrations (one in each of ``app0``, ``app1`` and ``app2``, each creating a table) and is
merged into the feature branch, as a developer's pull brings them; the next branch check is the
**moved** one (its base is three migrations past the cached one); the check after it is **warm**
(the exact base is cached). Once at the end, with the cache dropped, the **cold** check (what
the moved check cost before bases could grow). It prints the medians and moved / warm, the
issue's bar being 1.5x.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import comparison
from databases import Server
from rows import check
from run import (
    BenchmarkError,
    Project,
    build_project,
    drop_cache,
    find_guard,
    git,
    leftovers,
)

GAINED = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("{app}", "{after}")]

    operations = [
        migrations.RunSQL(
            "CREATE TABLE {table} (id serial PRIMARY KEY, note text NOT NULL DEFAULT '')",
            "DROP TABLE {table}",
        ),
    ]
'''


def latest(folder: Path) -> str:
    return max(p.stem for p in folder.glob("[0-9][0-9][0-9][0-9]_*.py"))


def main_gains(project: Project, round_: int) -> None:
    """Three migrations on main, pushed, then merged into the feature branch."""
    path = project.path
    git(path, "checkout", "-q", "main")
    for app in ("app0", "app1", "app2"):
        folder = path / app / "migrations"
        after = latest(folder)
        name = f"{int(after[:4]) + 1:04d}_gained_{round_}"
        (folder / f"{name}.py").write_text(
            GAINED.format(app=app, after=after, table=f"{app}_gained_{round_}"))
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", f"main gains three migrations ({round_})")
    git(path, "push", "-q", "origin", "main")
    git(path, "checkout", "-q", "feature")
    git(path, "merge", "-q", "--no-edit", "main")


def benchmark(migrations: int, repeat: int, db: str, server: Server, seed: int,
              extra: Sequence[str] = ()) -> int:
    guard = find_guard(db)
    figures: dict[str, list[float]] = {"moved": [], "warm": [], "cold": []}
    with tempfile.TemporaryDirectory(prefix="mg-bench-incremental-") as tmp:
        project = build_project(Path(tmp), migrations, seed, server)
        print(f"N={migrations}: branch check after main gained 3 migrations, median of {repeat}",
              flush=True)
        try:
            drop_cache(guard, project.path)  # another project's base must not be this one's
            check(guard, project, extra)  # fills the cache
            for round_ in range(repeat):
                main_gains(project, round_)
                moved = check(guard, project, extra)
                if "+ applied 3)" not in moved.stderr:
                    raise BenchmarkError(f"the base did not grow by 3:\n{moved.stderr}")
                figures["moved"].append(moved.seconds)
                figures["warm"].append(check(guard, project, extra).seconds)
            drop_cache(guard, project.path)
            figures["cold"].append(check(guard, project, extra).seconds)
        finally:
            drop_cache(guard, project.path)
        left = leftovers(guard)
        if left:
            raise BenchmarkError(f"migration-guard left databases behind: {sorted(left)}")
    medians = comparison.medians(figures, 6)
    print(f"  moved / warm = {medians['moved'] / medians['warm']:.2f}x   "
          f"cold / warm = {medians['cold'] / medians['warm']:.2f}x", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    def rows(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rows", type=int, help="migration-guard's --rows (default: its own)")

    return comparison.main(__doc__, argv, benchmark, repeat=5, options=rows, extra=lambda args: (
        () if args.rows is None else ("--rows", str(args.rows)),))


if __name__ == "__main__":
    raise SystemExit(main())
