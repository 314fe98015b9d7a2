"""The round trip on every tested alias: each one's base, its throwaway database, its run.

For each alias that :mod:`guard.database.aliases` tests, in ``DATABASES`` order: the cache key
of its base (the base migrations, the alias's settings and the routers' code), its template
database (built once, under the cache's lock), and the run's database cloned from it. The clones
are made at once, in the background, while the checks that need no database run. Then every
alias is pointed at its database (a mirror at its mirror's, an alias left out at a name that is
never created) and the selection goes forward, backward and forward again on each in turn, the
routers deciding what runs where. Every database made here is dropped when the run ends,
whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from guard import timings
from guard.database import bases, cache, portable, throwaway
from guard.database.server import Server, driver_errors, one_line
from guard.errors import FatalError
from guard.execution import seeding, throwaways
from guard.execution.observation import Observation
from guard.execution.outcome import Outcome
from guard.execution.roundtrip import Execution, Seeder
from guard.execution.seeding import RowSettings, Seeded
from guard.planning.graph import needs_models
from guard.types import MigrationKey, StepResult, label

if TYPE_CHECKING:
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState


class Point(Protocol):
    """Aims an alias at a database of ours (:func:`guard.project.point`)."""

    def __call__(self, alias: str, server: Server, name: str, *, keep_options: bool,
                 session: Mapping[str, str] | None = None) -> None: ...


class Progress(Protocol):
    """Where the run's lines go (:class:`guard.reporting.progress.Progress`)."""

    alias: str
    """The alias whose lines come next."""
    several: bool
    """More than one alias is tested."""

    def line(self, text: str = "") -> None: ...
    def base(self, count: int, seconds: float, *, cached: bool = False, reused: int = 0,
             restored: bool = False) -> None: ...
    def rows(self, seeded: Seeded | None, settings: RowSettings) -> None: ...
    def step(self, key: MigrationKey, result: StepResult) -> None: ...
    def done(self) -> None: ...
    def applying(self, index: int, total: int, key: MigrationKey, started: float) -> None: ...


@dataclass
class Target:
    """One tested alias: where its databases live, and what came of its run."""

    alias: str
    server: Server
    keep_options: bool
    """The project's own connection OPTIONS apply (its own server)."""
    name: str = ""
    """The run's database, once named."""
    template: str | None = None
    state: ProjectState | None = None
    """The state after a cached base (None: the run builds the base itself)."""
    first: Observation | None = None
    """What its database held before the round trip, when known without reading it."""
    outcome: Outcome | None = None


@dataclass(frozen=True)
class Settings:
    """What the runs need from the run's options."""

    project_dir: Path
    cache_size: int
    session: Mapping[str, str]
    """``lock_timeout`` and ``statement_timeout`` for every connection."""
    rows: RowSettings = RowSettings(count=0)
    """The rows put in every base before the selection goes forward."""
    measure: bool = True
    """Measure locks, rewrites and scans (``--no-safety`` turns it off)."""
    cache_dir: str = ""
    """Where portable copies of the cached bases are kept ("": nowhere)."""

    @property
    def seeder(self) -> Seeder | None:
        if not self.rows.active:
            return None
        rows = self.rows

        def seed(state: ProjectState, connection: Any) -> Seeded:
            return seeding.seed(state, connection, rows)

        return seed


@contextlib.contextmanager
def round_trips(
    targets: Sequence[Target],
    loader: MigrationLoader,
    *,
    base: Sequence[MigrationKey],
    order: Sequence[MigrationKey],
    cannot_reverse: set[MigrationKey],
    base_state: ProjectState,
    settings: Settings,
    point: Point,
    base_settings: Callable[[str], dict[str, Any]],
    mirrors: Mapping[str, str],
    left_out: Sequence[str],
    placeholder: tuple[Server, str],
    progress: Progress,
    meanwhile: Callable[[], None],
    hand_over: bool = False,
) -> Iterator[dict[str, Outcome]]:
    """Each target's outcome, by alias, for the block to report; its databases are dropped
    when the block ends (handed over to a process of their own with ``hand_over``, when it
    ends without an error: see :mod:`guard.execution.throwaways`).

    A mirror points at its mirror's database; the aliases left out, and every tested alias
    until its database exists, point at ``placeholder`` (a server and a name that is never
    created), so that nothing reaches the project's own databases.
    """
    from django.db import connections

    def aside() -> None:
        for target in targets:
            point(target.alias, target.server, placeholder[1],
                  keep_options=target.keep_options, session=settings.session)
        for alias in (*left_out, *mirrors):
            point(alias, *placeholder, keep_options=False, session=settings.session)

    for target in targets:
        target.name = throwaway.new_name()
    aside()
    by_alias = {target.alias: target for target in targets}
    made = [throwaways.Made(t.server, t.name, None) for t in targets]
    ended_well = False
    connect: dict[str, dict[str, Any]] = {}
    try:
        start: ProjectState | None = None
        if base and settings.cache_size > 0:
            everyone = [*by_alias, *left_out, *mirrors]
            with timings.phase("base") as said:
                start = _cached_bases(targets, loader, base, base_state, settings, point,
                                      base_settings, progress, everyone)
                said.append(_base_detail(targets))
            aside()
            if start is None:
                yield {t.alias: t.outcome for t in targets if t.outcome is not None}
                ended_well = True
                return
        for one, target in zip(made, targets, strict=True):
            one.template = target.template
        creating = [throwaways.Background(_creator(m), "database (made)") for m in made]
        try:
            meanwhile()
            if start is not None and order and (
                    len(targets) > 1 or needs_models(loader.graph.nodes[order[0]])):
                with timings.phase("rendering models", "of the state after the base, while "
                                   "the run's database is made"):
                    start.apps  # noqa: B018 - render once, while the databases are made
        finally:
            with timings.phase("database", "waiting for the run's database") as said:
                for job in creating:
                    job.join()
                said.append(", ".join(sorted({"a spare clone" if m.spare else "cloned"
                                              for m in made if m.template})))
        if start is not None:
            for target in targets:
                target.state = start if target is targets[-1] else start.clone()
        for target, one in zip(targets, made, strict=True):
            target.first = one.first
            if target.template is not None and target.outcome is not None:
                progress.alias = target.alias
                progress.base(target.outcome.base_count, target.outcome.base_seconds,
                              cached=target.outcome.base_cached,
                              restored=target.outcome.base_restored,
                              reused=target.outcome.base_reused)
                progress.rows(target.outcome.seeded, settings.rows)
        for target in targets:
            point(target.alias, target.server, target.name, keep_options=target.keep_options,
                  session=settings.session)
        for alias, mirror in mirrors.items():
            if mirror in by_alias:
                chosen = by_alias[mirror]
                point(alias, chosen.server, chosen.name, keep_options=chosen.keep_options,
                      session=settings.session)
        with timings.phase("round trip", f"{len(order)} migration(s)"):
            for target in targets:
                target.outcome = _run(target, loader, base, order, cannot_reverse, progress,
                                      settings)
                connect[target.name] = throwaways.options_of(connections[target.alias])
        connections.close_all()
        yield {t.alias: t.outcome for t in targets if t.outcome is not None}
        ended_well = True
    finally:
        connections.close_all()
        throwaways.finish(made, progress, hand_over=hand_over and ended_well, connect=connect)


def _base_detail(targets: Sequence[Target]) -> str:
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


def _cached_bases(
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
            meanings=meanings)
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
            execution.on_apply = _applying(progress)
            try:
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
                return seeding.seed(state, connections[target.alias], settings.rows).to_dict()
            finally:
                connections.close_all()

        folder = (portable.Folder(Path(settings.cache_dir), server, versions[where])
                  if settings.cache_dir else None)
        found = bases.ensure(server, wanted, build, seed, keep=settings.cache_size,
                             folder=folder)
        for note in folder.notes if folder is not None else ():
            progress.line(f"note: {note}")
        outcome = execution.outcome
        if found is None:
            progress.line(f"base{_on(progress, target)}: FAILED: {outcome.base_error}")
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


def _run(
    target: Target,
    loader: MigrationLoader,
    base: Sequence[MigrationKey],
    order: Sequence[MigrationKey],
    cannot_reverse: set[MigrationKey],
    progress: Progress,
    settings: Settings,
) -> Outcome:
    from django.db import connections

    progress.alias = target.alias

    def on_base(count: int, seconds: float) -> None:
        progress.base(count, seconds)
        progress.rows(execution.outcome.seeded, settings.rows)

    execution = Execution(loader, connections[target.alias], base=base, order=order,
                          cannot_reverse=cannot_reverse, on_step=progress.step,
                          on_base=on_base, timeouts=dict(settings.session),
                          seeder=settings.seeder, measure=settings.measure)
    if target.outcome is not None:  # the base came from the cache
        execution.outcome = target.outcome
    execution.first = target.first
    execution.on_apply = _applying(progress)
    try:
        outcome = execution.run(target.state)
        progress.done()
    except driver_errors() + _django_errors() as exc:
        # A migration's own errors are caught per step; one escaping here came from our own
        # queries (snapshots, the recorder): the server is the likely cause.
        raise FatalError(
            f"Lost the PostgreSQL server {target.server.describe()} mid-run: "
            f"{one_line(exc)}. Check that it is running, then run again."
        ) from exc
    if outcome.base_error:
        progress.line(f"base{_on(progress, target)}: FAILED: {outcome.base_error}")
    return outcome


def _applying(progress: Progress) -> Callable[[int, int, MigrationKey], None]:
    """What the base's build reports after each migration: live progress."""
    started = time.monotonic()

    def applying(index: int, total: int, key: MigrationKey) -> None:
        progress.applying(index, total, key, started)

    return applying


def _on(progress: Progress, target: Target) -> str:
    return f" on {target.alias}" if progress.several else ""


def _django_errors() -> tuple[type[BaseException], ...]:
    from django.db import utils

    return (utils.OperationalError, utils.InterfaceError)


def _creator(made: throwaways.Made) -> Callable[[], None]:
    def create() -> None:
        throwaways.create(made)

    return create
