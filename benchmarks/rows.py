"""What rows in the base cost: the branch check with the default rows, then with ``--rows 0``.

Run it from the repository root with the project's virtualenv (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/rows.py --migrations 300 --repeat 5

It generates the synthetic project of ``benchmarks/run.py`` (its feature branch adds one
migration to ``app5``) and measures ``migration-guard check`` in branch mode two ways, each with
the default rows (3 per model) and with ``--rows 0``, in interleaved rounds so that a machine that
slows down weighs on both alike:

1. warm: the cached base exists (the median of ``--repeat`` runs after one that fills it);
2. cold: the cache is dropped before each run, so the base is built (and, with rows, seeded)
   from an empty database; the line also shows the base's own seconds and the rows' seconds.

It prints each median and the ratio rows / no rows.
"""

from __future__ import annotations

import re
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

import comparison
from databases import Server
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
    run,
    settle,
)

VARIANTS = (("rows 3", ()), ("rows 0", ("--rows", "0")))


def check(guard: Guard, project: Project, extra: Sequence[str]) -> Result:
    settle()
    result = run([guard.executable, "check", "--db", guard.db, *extra], cwd=project.path,
                 env=base_env())
    if project.feature.label not in result.stderr:
        raise BenchmarkError(f"migration-guard did not select {project.feature.label}:\n"
                             f"{result.stderr}")
    return result


def seconds_of(step: str, result: Result) -> float:
    """The seconds on the progress line of ``base`` or ``rows``."""
    found = re.search(rf"^\s+{step}\s.*?(\d+\.\d+)s$", result.stderr, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def benchmark(migrations: int, repeat: int, db: str, server: Server, seed: int) -> int:
    guard = find_guard(db)
    warm: dict[str, list[float]] = {name: [] for name, _ in VARIANTS}
    cold: dict[str, list[float]] = {name: [] for name, _ in VARIANTS}
    building: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="mg-bench-rows-") as tmp:
        project = build_project(Path(tmp), migrations, seed, server)
        print(f"N={migrations}: branch check, median of {repeat}, interleaved", flush=True)
        try:
            for _name, extra in VARIANTS:
                check(guard, project, extra)  # fills the cache
            for _ in range(repeat):
                for name, extra in VARIANTS:
                    warm[name].append(check(guard, project, extra).seconds)
            for _ in range(repeat):
                for name, extra in VARIANTS:
                    drop_cache(guard, project.path)
                    result = check(guard, project, extra)
                    cold[name].append(result.seconds)
                    building[name].append((seconds_of("base", result),
                                           seconds_of("rows", result)))
        finally:
            drop_cache(guard, project.path)
        left = leftovers(guard)
        if left:
            raise BenchmarkError(f"migration-guard left databases behind: {sorted(left)}")
    for title, runs in (("warm", warm), ("cold", cold)):
        medians = {name: statistics.median(seconds) for name, seconds in runs.items()}
        for name, seconds in runs.items():
            shown = ", ".join(f"{s:.2f}" for s in seconds)
            extra_line = ""
            if title == "cold":
                base = statistics.median(b for b, _ in building[name])
                rows = statistics.median(r for _, r in building[name])
                extra_line = f"  base {base:.2f}s, rows {rows:.2f}s"
            print(f"  {title} {name:<8} {medians[name]:6.2f}s{extra_line}  (runs: {shown})")
        print(f"  {title}: rows 3 / rows 0 = {medians['rows 3'] / medians['rows 0']:.2f}x",
              flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return comparison.main(__doc__, argv, benchmark, repeat=5)


if __name__ == "__main__":
    raise SystemExit(main())
