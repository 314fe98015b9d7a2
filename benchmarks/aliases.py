"""What a second database alias costs: the warm branch check with one alias, then with two.

Run it from the repository root with the project's virtualenv (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/aliases.py --migrations 300 --repeat 7

It generates the synthetic project of ``benchmarks/run.py`` (its feature branch adds one
migration to ``app5``) and measures the warm ``migration-guard check`` in branch mode (the median
of ``--repeat`` runs, after one unmeasured run that fills the cache), three ways:

1. the project as generated: one alias;
2. the same project with a second alias ``ledger`` and a router that keeps every app of it on
   ``default`` (a second database whose own apps this change does not touch): ledger is
   migrated too, its operations all denied, and the feature migration runs on default only;
3. the same with no router: Django migrates every app on both aliases, so the feature migration
   runs on both (the most a second alias can cost).

It prints each median and its ratio to (1).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import comparison
from databases import Server
from run import (
    BenchmarkError,
    build_project,
    drop_cache,
    find_guard,
    guard_check,
    leftovers,
)

LEDGER = '''

DATABASES["ledger"] = {**DATABASES["default"], "NAME": "bench_ledger"}
'''

ROUTED = LEDGER + '''DATABASE_ROUTERS = ["benchproject.routers.Router"]
'''

ROUTER = '''
class Router:
    """Every app of this project lives on default; ledger holds none of them."""

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
'''


VARIANTS = (
    ("(1) one alias", ""),
    ("(2) two aliases, routed to default", ROUTED),
    ("(3) two aliases, every app on both", LEDGER),
)


def benchmark(migrations: int, repeat: int, db: str, server: Server, seed: int) -> int:
    """Each variant warmed up once, then measured in interleaved rounds (1, 2, 3, 1, 2, 3 ...),
    so that a machine that slows down or speeds up weighs on all three alike."""
    guard = find_guard(db)
    with tempfile.TemporaryDirectory(prefix="mg-bench-aliases-") as tmp:
        project = build_project(Path(tmp), migrations, seed, server)
        settings = project.path / "benchproject" / "settings.py"
        original = settings.read_text()
        (project.path / "benchproject" / "routers.py").write_text(ROUTER)
        print(f"N={migrations}: warm branch check, median of {repeat}, interleaved", flush=True)
        runs: dict[str, list[float]] = {name: [] for name, _ in VARIANTS}
        try:
            for _name, extra in VARIANTS:
                settings.write_text(original + extra)
                guard_check(guard, project)  # fills the cache
            for _ in range(repeat):
                for name, extra in VARIANTS:
                    settings.write_text(original + extra)
                    runs[name].append(guard_check(guard, project).seconds)
        finally:
            settings.write_text(original)
            drop_cache(guard, project.path)
        left = leftovers(guard)
        if left:
            raise BenchmarkError(f"migration-guard left databases behind: {sorted(left)}")
    medians = comparison.medians(runs, 36)
    one, routed, both = (medians[name] for name, _ in VARIANTS)
    print(f"  (2)/(1) {routed / one:.2f}x   (3)/(1) {both / one:.2f}x")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return comparison.main(__doc__, argv, benchmark, repeat=7)


if __name__ == "__main__":
    raise SystemExit(main())
