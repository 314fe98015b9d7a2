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
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from guard import timings
from guard.database import throwaway
from guard.database.server import Server, driver_errors, one_line
from guard.errors import FatalError
from guard.execution import basing, jobs, throwaways
from guard.execution.beside import Beside
from guard.execution.outcome import Outcome
from guard.execution.roundtrip import Execution
from guard.execution.targets import Point, Progress, Settings, Target
from guard.planning import groups
from guard.planning.graph import needs_models
from guard.types import MigrationKey

if TYPE_CHECKING:
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState


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
    stack = contextlib.ExitStack()  # the forked parts of the round trip, ended with it
    forked: list[Beside[Outcome]] = []
    try:
        start: ProjectState | None = None
        if base and settings.cache_size > 0:
            everyone = [*by_alias, *left_out, *mirrors]
            with timings.phase("base") as said:
                start = basing.cached_bases(targets, loader, base, base_state, settings, point,
                                      base_settings, progress, everyone)
                said.append(basing.detail(targets))
            aside()
            if start is None:
                yield {t.alias: t.outcome for t in targets if t.outcome is not None}
                ended_well = True
                return
        for one, target in zip(made, targets, strict=True):
            one.template = target.template
        parts = _parts(targets, loader, order, start, settings)
        if len(parts) > 1:  # the others at once, forked with the state rendered (see .jobs)
            assert start is not None
            with timings.phase("rendering models", "of the state after the base, for every "
                               "part of the round trip"):
                start.apps  # noqa: B018 - rendered once, for every part
            forked = [stack.enter_context(jobs.start(
                jobs.Part(targets[0].alias, targets[0].server, str(targets[0].template),
                          targets[0].keep_options, settings.session, part),
                loader=loader, base=base, state=start, outcome=targets[0].outcome or Outcome(),
                cannot_reverse=cannot_reverse, point=point,
                execution=_making(loader, base, cannot_reverse, settings),
            )) for part in parts[1:]]
        creating = [throwaways.Background(_creator(m), "database (made)") for m in made]
        try:
            meanwhile()
            if start is not None and order and "apps" not in start.__dict__ and (
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
        with timings.phase("round trip", f"{len(order)} migration(s)"
                           + (f" in {len(parts)} parts at once" if len(parts) > 1 else "")):
            progress.holding = len(parts) > 1  # the lines in order once every part is done
            for target in targets:
                target.outcome = _run(target, loader, base, parts[0], cannot_reverse, progress,
                                      settings, renew=_renewer(target, made, point, settings,
                                                               mirrors))
                connect[target.name] = throwaways.options_of(connections[target.alias])
            if len(parts) > 1:
                mine = targets[0].outcome
                assert mine is not None
                targets[0].outcome = jobs.serial(
                    order, [(parts[0], mine), *zip(parts[1:], (job.result() for job in forked),
                                                   strict=True)], base=mine)
                progress.release(order, targets[0].outcome.steps)
        connections.close_all()
        yield {t.alias: t.outcome for t in targets if t.outcome is not None}
        ended_well = True
    finally:
        connections.close_all()
        stack.close()
        throwaways.finish(made, progress, hand_over=hand_over and ended_well, connect=connect)


def _parts(targets: Sequence[Target], loader: MigrationLoader, order: Sequence[MigrationKey],
           start: ProjectState | None, settings: Settings) -> list[tuple[MigrationKey, ...]]:
    """The round trip in parts that run at once (one part: as it is). Only one tested alias
    and a cached base: each part clones the base."""
    if (len(targets) != 1 or start is None or targets[0].template is None
            or not jobs.worth_it(order, settings.jobs)):
        return [tuple(order)]
    return groups.pack(loader.graph, order, settings.jobs)


def _making(loader: MigrationLoader, base: Sequence[MigrationKey],
            cannot_reverse: set[MigrationKey], settings: Settings
            ) -> Callable[[Any, Sequence[MigrationKey]], Execution]:
    """How a forked part makes its :class:`Execution`: quiet (its lines are said here)."""
    def make(connection: Any, part: Sequence[MigrationKey]) -> Execution:
        return Execution(loader, connection, base=base, order=part,
                         cannot_reverse=cannot_reverse, on_step=lambda key, result: None,
                         timeouts=dict(settings.session), measure=settings.measure,
                         estimator=settings.estimator)

    return make


def _run(
    target: Target,
    loader: MigrationLoader,
    base: Sequence[MigrationKey],
    order: Sequence[MigrationKey],
    cannot_reverse: set[MigrationKey],
    progress: Progress,
    settings: Settings,
    *,
    renew: Callable[[], None],
) -> Outcome:
    from django.db import connections

    progress.alias = target.alias

    def on_base(count: int, seconds: float) -> None:
        progress.base(count, seconds)
        progress.rows(execution.outcome.seeded, settings.rows)

    execution = Execution(loader, connections[target.alias], base=base, order=order,
                          cannot_reverse=cannot_reverse, on_step=progress.step,
                          on_base=on_base, timeouts=dict(settings.session),
                          seeder=settings.seeder, measure=settings.measure,
                          estimator=settings.estimator)
    if target.outcome is not None:  # the base came from the cache
        execution.outcome = target.outcome
    execution.first = target.first
    execution.renew = renew
    execution.on_apply = basing.applying(progress)
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
        progress.line(f"base{basing.on_alias(progress, target)}: FAILED: {outcome.base_error}")
    return outcome


def _renewer(target: Target, made: list[throwaways.Made], point: Point, settings: Settings,
             mirrors: Mapping[str, str]) -> Callable[[], None]:
    """A new database for ``target`` where its run started (a clone of its base, or empty),
    its alias and those mirroring it pointed there; dropped with the run's others."""
    def renew() -> None:
        one = throwaways.Made(target.server, throwaway.new_name(), target.template)
        made.append(one)
        throwaway.create_database(one.server, one.name, template=one.template)
        target.name = one.name
        for alias in (target.alias, *(a for a, m in mirrors.items() if m == target.alias)):
            point(alias, target.server, one.name, keep_options=target.keep_options,
                  session=settings.session)

    return renew


def _django_errors() -> tuple[type[BaseException], ...]:
    from django.db import utils

    return (utils.OperationalError, utils.InterfaceError)


def _creator(made: throwaways.Made) -> Callable[[], None]:
    def create() -> None:
        throwaways.create(made)

    return create
