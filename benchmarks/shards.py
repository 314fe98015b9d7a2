"""What ``--full --shard I/4`` buys: the slowest of four shards against the unsharded full run.

Run it from the repository root with the project's virtualenv (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/shards.py --migrations 1000 --repeat 3

It generates the synthetic project of ``benchmarks/run.py`` and measures, in rounds,
``check --full`` and each of ``check --full --shard I/4`` (all warm rounds first, then the
restored ones) (one after the other here; in CI they
run at once on four machines, so the slowest one is what a shard costs):

1. **warm**: each run's base is cached on the server (a developer's machine, a CI runner that
   keeps its server);
2. **restored**: the server lost every cached base (``migration-guard clean``, as a CI service
   container starts) and each run has its own cache folder from an earlier run (as
   ``docs/workflows/migration-tests-sharded.yml`` keeps one per shard).

It checks that the four shards' own migrations together are the unsharded run's selection with
no overlap and that ``report merge`` passes, then prints each median, the slowest shard's, and
slowest shard / unsharded (the issue's bars: 0.35x at N=1000, 0.5x at N=300).
"""

from __future__ import annotations

import json
import shutil
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

SHARDS = 4


def full(guard: Guard, project: Project, report: Path, *extra: str) -> Result:
    settle()
    return run([guard.executable, "check", "--full", "--db", guard.db, "--format",
                f"json={report}", *extra], cwd=project.path, env=base_env())


def verify(guard: Guard, project: Project, whole: Path, shards: Sequence[Path]) -> None:
    """The shards' own migrations are the unsharded selection, once each; the merge passes."""
    selected = [s["migration"] for s in json.loads(whole.read_text())["selected"]]
    owned = [m for path in shards for m in json.loads(path.read_text())["shard"]["migrations"]]
    if sorted(owned) != sorted(selected) or len(set(owned)) != len(owned):
        raise BenchmarkError(f"the shards' migrations ({len(owned)}, {len(set(owned))} "
                             f"different) are not the unsharded selection ({len(selected)})")
    run([guard.executable, "report", "merge", *map(str, shards)], cwd=project.path,
        env=base_env())
    print(f"  the {SHARDS} shards own {len(owned)} migrations, the unsharded run selects "
          f"{len(selected)}: the same, no overlap; report merge passed", flush=True)


def benchmark(migrations: int, repeat: int, db: str, server: Server, seed: int) -> int:
    guard = find_guard(db)
    names = ["full", *(f"shard {i}/{SHARDS}" for i in range(1, SHARDS + 1))]
    figures: dict[str, dict[str, list[float]]] = {
        mode: {name: [] for name in names} for mode in ("warm", "restored")}
    with tempfile.TemporaryDirectory(prefix="mg-bench-shards-") as tmp:
        root = Path(tmp)
        project = build_project(root, migrations, seed, server)
        reports = [root / f"report-{i}.json" for i in range(SHARDS + 1)]
        folders = [root / f"cache-{i}" for i in range(SHARDS + 1)]

        def one(i: int, mode: str) -> Result:
            extra = ("--cache-dir", str(folders[i])) if mode == "restored" else ()
            shard = ("--shard", f"{i}/{SHARDS}") if i else ()
            return full(guard, project, reports[i], *shard, *extra)

        print(f"N={migrations}: check --full against each of --shard I/{SHARDS}, median of "
              f"{repeat}", flush=True)
        try:
            drop_cache(guard, project.path)
            for i in range(SHARDS + 1):  # every base cached, every folder filled
                one(i, "restored")
            verify(guard, project, reports[0], reports[1:])
            for _ in range(repeat):  # every base stays cached through these
                for i, name in enumerate(names):
                    figures["warm"][name].append(one(i, "warm").seconds)
            for _ in range(repeat):
                for i, name in enumerate(names):
                    drop_cache(guard, project.path)
                    result = one(i, "restored")
                    if "restored from the cache folder" not in result.stderr:
                        raise BenchmarkError(f"the base was not restored:\n{result.stderr}")
                    figures["restored"][name].append(result.seconds)
        finally:
            drop_cache(guard, project.path)
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
        left = leftovers(guard)
        if left:
            raise BenchmarkError(f"migration-guard left databases behind: {sorted(left)}")
    for mode, runs in figures.items():
        print(f"  {mode}:", flush=True)
        medians = comparison.medians(runs, 12, prefix="  ")
        slowest = max(medians[name] for name in names[1:])
        print(f"    slowest shard / full = {slowest / medians['full']:.2f}x   (shards together: "
              f"{sum(medians[n] for n in names[1:]) / medians['full']:.2f}x the full run; "
              f"spread of the shards {statistics.pstdev(medians[n] for n in names[1:]):.2f}s)",
              flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return comparison.main(__doc__, argv, benchmark, repeat=3)


if __name__ == "__main__":
    raise SystemExit(main())
