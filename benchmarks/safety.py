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

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from databases import Server, ServerError
from rows import check
from run import DEFAULT_URL, BenchmarkError, build_project, drop_cache, find_guard, leftovers

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
    medians = {name: statistics.median(seconds) for name, seconds in warm.items()}
    for name, seconds in warm.items():
        shown = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"  warm {name:<10} {medians[name]:6.2f}s  (runs: {shown})")
    print(f"  warm: safety / no-safety = {medians['safety'] / medians['no-safety']:.3f}x",
          flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--migrations", type=int, default=300, metavar="N")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--db", default=DEFAULT_URL, help="migration-guard's --db")
    parser.add_argument("--server", metavar="URL", default=DEFAULT_URL,
                        help="the server of the generated project's own check")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        return benchmark(args.migrations, args.repeat, args.db, Server.from_url(args.server),
                         args.seed)
    except (BenchmarkError, ServerError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
