"""What measuring locks, rewrites and scans costs: the warm branch check with and without it,
and with ``--stats`` (estimates at production size, the server's calibration cached).

Run it from the repository root with the project's virtualenv (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/safety.py --migrations 300 --repeat 7

It generates the synthetic project of ``benchmarks/run.py`` (its feature branch adds one
migration to ``app5``) and measures ``migration-guard check`` in branch mode with the cached base
in place, with the safety measurements (the default), with ``--no-safety`` and with ``--stats
FILE`` (the stats of a database migrated by plain ``migrate``, taken by ``migration-guard
stats``), in interleaved rounds so that a machine that slows down weighs on all alike. It prints
each median and the ratios: measuring on / off (the bar is 1.15x), with stats / without (1.1x).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import comparison
from databases import Databases, Server
from rows import check
from run import BenchmarkError, base_env, build_project, drop_cache, find_guard, leftovers, manage
from run import run as run_command

VARIANTS = (("safety", ()), ("no-safety", ("--no-safety",)), ("stats", ("--stats", "")))


def take_stats(guard_executable: str, project: Path, server: Server, out: Path) -> Path:
    """The stats of the project migrated by plain ``migrate`` (production's stand-in)."""
    with Databases(server) as dbs:
        name = dbs.create()
        manage(project, {**base_env(), **server.django_env(name)}, "migrate", "--noinput")
        url = f"postgres://{server.user}@{server.host}:{server.port}/{name}"
        run_command([guard_executable, "stats", "--db", url, "--output", str(out)], cwd=project,
                    env=base_env())
    return out


def benchmark(migrations: int, repeat: int, db: str, server: Server, seed: int) -> int:
    guard = find_guard(db)
    warm: dict[str, list[float]] = {name: [] for name, _ in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="mg-bench-safety-") as tmp:
        project = build_project(Path(tmp), migrations, seed, server)
        print(f"N={migrations}: warm branch check, median of {repeat}, interleaved", flush=True)
        stats = take_stats(guard.executable, project.path, server, Path(tmp) / "stats.json")
        variants = [(name, tuple(e or str(stats) for e in extra))
                    for name, extra in VARIANTS]
        try:
            check(guard, project, ())  # fills the cache
            check(guard, project, ("--stats", str(stats)))  # calibrates once
            for _ in range(repeat):
                for name, extra in variants:
                    warm[name].append(check(guard, project, extra).seconds)
        finally:
            drop_cache(guard, project.path)
        left = leftovers(guard)
        if left:
            raise BenchmarkError(f"migration-guard left databases behind: {sorted(left)}")
    medians = comparison.medians(warm, 10, "warm ")
    print(f"  warm: safety / no-safety = {medians['safety'] / medians['no-safety']:.3f}x",
          flush=True)
    print(f"  warm: --stats / without = {medians['stats'] / medians['safety']:.3f}x", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return comparison.main(__doc__, argv, benchmark, repeat=7)


if __name__ == "__main__":
    raise SystemExit(main())
