"""What the cache folder (``--cache-dir``) buys on a server that starts empty, as in CI.

Run it from the repository root with the project's virtualenv (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/cachedir.py --migrations 300 --repeat 5

It generates the synthetic project of ``benchmarks/run.py`` and measures, in interleaved rounds:

1. **warm**: the branch check with its base on the server (the everyday case on a laptop);
2. **restored**: the branch check on a server that lost every cached base (``migration-guard
   clean``, as a CI service container starts) with the cache folder from an earlier run: the
   base is restored from the folder instead of replayed;
3. **full cold** and **full restored**: ``check --full`` (every migration from an empty
   database, then the last 5 of each app back and forth) on an emptied server, without and
   with the folder;
4. **migrate**: plain ``manage.py migrate`` from an empty database, in the same rounds.

It prints each median, restored / warm (the bar: 1.5x), full restored / full cold (0.6x), and
full cold and full restored against plain ``migrate`` (the bars: 1.6x and 0.5x).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import comparison
from databases import Databases, Server
from rows import check
from run import (
    BenchmarkError,
    Guard,
    Project,
    Result,
    base_env,
    build_project,
    drop_cache,
    find_guard,
    leftovers,
    plain_migrate,
    run,
    settle,
)


def full(guard: Guard, project: Project, extra: Sequence[str]) -> Result:
    settle()
    return run([guard.executable, "check", "--full", "--db", guard.db, *extra],
               cwd=project.path, env=base_env())


def benchmark(migrations: int, repeat: int, db: str, server: Server, seed: int) -> int:
    guard = find_guard(db)
    figures: dict[str, list[float]] = {
        "warm": [], "restored": [], "full cold": [], "full restored": [], "migrate": []}
    with tempfile.TemporaryDirectory(prefix="mg-bench-cachedir-") as tmp:
        project = build_project(Path(tmp), migrations, seed, server)
        folder = Path(tmp) / "cache"
        branch = ("--cache-dir", str(folder))
        print(f"N={migrations}: an emptied server with and without the cache folder, median of "
              f"{repeat}", flush=True)
        with Databases(server) as dbs:
            try:
                drop_cache(guard, project.path)
                check(guard, project, branch)  # the folder gets the branch check's base
                full(guard, project, ("--cache-dir", str(folder)))  # and the full run's
                for _ in range(repeat):
                    figures["warm"].append(check(guard, project, branch).seconds)
                    drop_cache(guard, project.path)
                    restored = check(guard, project, branch)
                    if "restored from the cache folder" not in restored.stderr:
                        raise BenchmarkError(f"the base was not restored:\n{restored.stderr}")
                    figures["restored"].append(restored.seconds)
                    drop_cache(guard, project.path)
                    figures["full cold"].append(full(guard, project, ()).seconds)
                    drop_cache(guard, project.path)
                    figures["full restored"].append(
                        full(guard, project, ("--cache-dir", str(folder))).seconds)
                    figures["migrate"].append(plain_migrate(project, dbs))
                size = sum(p.stat().st_size for p in folder.glob("*.dump"))
            finally:
                drop_cache(guard, project.path)
                shutil.rmtree(folder, ignore_errors=True)
        left = leftovers(guard)
        if left:
            raise BenchmarkError(f"migration-guard left databases behind: {sorted(left)}")
    medians = comparison.medians(figures, 14)
    print(f"  restored / warm = {medians['restored'] / medians['warm']:.2f}x   "
          f"full restored / full cold = {medians['full restored'] / medians['full cold']:.2f}x"
          f"   (folder: {size / 1e6:.1f} MB)", flush=True)
    print(f"  full cold / migrate = {medians['full cold'] / medians['migrate']:.2f}x   "
          f"full restored / migrate = {medians['full restored'] / medians['migrate']:.2f}x",
          flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return comparison.main(__doc__, argv, benchmark, repeat=5)


if __name__ == "__main__":
    raise SystemExit(main())
