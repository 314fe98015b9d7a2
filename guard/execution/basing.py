"""Each target's base: its cache key, and its template found, grown, restored or built
(:mod:`guard.database.bases`), with what came of it on the target's outcome."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guard import timings
from guard.database import bases, cache
from guard.execution.beside import Beside
from guard.execution.roundtrip import Execution
from guard.execution.targets import Point, Progress, Settings, Target
from guard.rows import seeding
from guard.rows.seeding import Seeded
from guard.types import MigrationKey, label

if TYPE_CHECKING:
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState


def detail(targets: Sequence[Target]) -> str:
    """How the bases came to be, for the timings."""
    found = []
    for target in targets:
        outcome = target.outcome
        if outcome is None:
            continue
        how = ("restored from the cache folder" if outcome.base_restored
               else "cached" if outcome.base_cached
               else f"grown from a cached one by {outcome.base_count - outcome.base_reused}"
               if outcome.base_reused else f"built: {outcome.base_count} migration(s)")
        found.append(how + (f" on {target.alias}" if len(targets) > 1 else ""))
    return ", ".join(found)


def cached_bases(
    targets: Sequence[Target],
    loader: MigrationLoader,
    base: Sequence[MigrationKey],
    base_state: ProjectState,
    settings: Settings,
    point: Point,
    base_settings: Callable[[str], dict[str, Any]],
    progress: Progress,
    everyone: Sequence[str],
) -> ProjectState | None:
    """Find or build each target's base as a template; the state after the base (the same on
    every alias), or None when a base failed to apply (that target's outcome says why)."""
    from django.db import connections

    versions: dict[str, str] = {}
    start: ProjectState | None = None
    migrations = cache.migration_digests(loader, base, project_dir=settings.project_dir)
    by_label = {label(key): key for key in base}
    known: dict[str, str] = {}

    def meanings(labels: Collection[str] | None) -> dict[str, str]:  # when a base is missing
        wanted = [key for key in base if labels is None or label(key) in labels]
        todo = [key for key in wanted if label(key) not in known]
        known.update(cache.migration_digests(loader, todo, project_dir=settings.project_dir,
                                             meaning=True))
        return {label(key): known[label(key)] for key in wanted}

    rows = (json.dumps(seeding.key_part(settings.rows), sort_keys=True)
            if settings.rows.active else None)
    for target in targets:
        started = time.perf_counter()
        server = target.server
        where = server.describe()
        if where not in versions:
            versions[where] = cache.server_version(server)
        wanted = bases.Wanted(migrations, cache.environment(
            server_version=versions[where], settings=base_settings(target.alias)), rows,
            meanings=meanings, meanings_beside=lambda: Beside(
                lambda: dict(meanings(None)), name="meanings of the base's migrations"))
        progress.alias = target.alias
        execution = Execution(loader, connections[target.alias], base=base, order=(),
                              cannot_reverse=set(), on_step=progress.step,
                              timeouts=dict(settings.session))
        built: list[ProjectState] = []

        def aim(building: str, target: Target = target) -> None:
            # Every alias points at the base being built (the others' databases do not exist
            # yet): a RunPython that writes through the default manager instead of
            # schema_editor.connection.alias lands here, not on a missing database.
            for alias in everyone:
                point(alias, target.server, building, keep_options=target.keep_options,
                      session=settings.session)

        def build(building: str, done: Collection[str], execution: Execution = execution,
                  built: list[ProjectState] = built) -> bool:
            aim(building)
            execution.on_apply = applying(progress)
            try:
                with timings.phase("applying", f"{len(base) - len(done)} migration(s)",
                                   within="base"):
                    result = execution.build_base({by_label[name] for name in done})
            finally:
                connections.close_all()
            if result is not None:
                built.append(result)
            return result is not None

        def seed(building: str, target: Target = target,
                 built: list[ProjectState] = built) -> dict[str, Any]:
            aim(building)
            try:
                state = built[0] if built else base_state.clone()
                with timings.phase("rows", within="base"):
                    return seeding.seed(state, connections[target.alias],
                                        settings.rows).to_dict()
            finally:
                connections.close_all()

        folder = None
        if settings.cache_dir:
            from guard.database import portable

            folder = portable.Folder(Path(settings.cache_dir), server, versions[where])
        found = bases.ensure(server, wanted, build, seed, keep=settings.cache_size,
                             folder=folder)
        for note in folder.notes if folder is not None else ():
            progress.line(f"note: {note}")
        outcome = execution.outcome
        if found is None:
            progress.line(f"base{on_alias(progress, target)}: FAILED: {outcome.base_error}")
            target.outcome = outcome
            return None
        target.template = found.name
        outcome.seeded = Seeded.from_dict(found.seeded) if found.seeded else None
        if start is None:
            start = built[0] if built else base_state.clone()
        outcome.base_count = len(base)
        outcome.base_cached = found.cached
        outcome.base_restored = found.restored
        outcome.base_reused = len(base) if found.cached else found.reused
        outcome.base_seconds = time.perf_counter() - started
        target.outcome = outcome
    return start


def applying(progress: Progress) -> Callable[[int, int, MigrationKey], None]:
    """What the base's build reports after each migration: live progress."""
    started = time.monotonic()

    def applying(index: int, total: int, key: MigrationKey) -> None:
        progress.applying(index, total, key, started)

    return applying


def on_alias(progress: Progress, target: Target) -> str:
    return f" on {target.alias}" if progress.several else ""
