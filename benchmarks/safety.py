"""What measuring locks, rewrites and scans costs: the warm branch check with and without it.

Run it from the repository root with the project's virtualenv (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/safety.py --migrations 300 --repeat 7

It generates the synthetic project of ``benchmarks/run.py`` (its feature branch adds one
migration to ``app5``) and measures ``migration-guard check`` in branch mode with the cached base
in place, with the safety measurements (the default) and with ``--no-safety``, in interleaved
rounds so that a machine that slows down weighs on both alike. It prints each median and the
ratio on / off; the issue's bar is 1.15x.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import comparison
from databases import Server
from rows import check
from run import BenchmarkError, build_project, drop_cache, find_guard, leftovers

VARIANTS = (("safety", ()), ("no-safety", ("--no-safety",)))


def benchmark(migrations: int, repeat: int, db: str, server: Server, seed: int) -> int:
    guard = find_guard(db)
    warm: dict[str, list[float]] = {name: [] for name, _ in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="mg-bench-safety-") as tmp:
        project = build_project(Path(tmp), migrations, seed, server)
        print(f"N={migrations}: warm branch check, median of {repeat}, interleaved", flush=True)
        try:
            check(guard, project, ())  # fills the cache
            for _ in range(repeat):
                for name, extra in VARIANTS:
                    warm[name].append(check(guard, project, extra).seconds)
        finally:
            drop_cache(guard, project.path)
        left = leftovers(guard)
        if left:
            raise BenchmarkError(f"migration-guard left databases behind: {sorted(left)}")
    medians = comparison.medians(warm, 10, "warm ")
    print(f"  warm: safety / no-safety = {medians['safety'] / medians['no-safety']:.3f}x",
          flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return comparison.main(__doc__, argv, benchmark, repeat=7)


if __name__ == "__main__":
    raise SystemExit(main())
