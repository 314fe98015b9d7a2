"""``--jobs N``: the round trip's independent groups at once, each part on a clone of its own.

:func:`guard.planning.groups.pack` splits the selection into parts that share no migration.
The first part runs here, on the run's own database; each other one in a forked copy of this
process (:class:`guard.execution.beside.Beside`), made once the base's state is rendered (so no
part renders it again), which clones the base, runs its part, drops its clone and hands back
its outcome. :func:`serial` then puts the parts' outcomes together in Django's order, as the
round trip of ``--jobs 1`` has them: a failure blocks only the migrations that depend on it
(:mod:`guard.execution.blocking`), and those are in its own part, so no part waits on
another's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from guard.database import throwaway
from guard.database.server import Server
from guard.execution.beside import Beside, can_fork
from guard.execution.outcome import Outcome
from guard.types import MigrationKey, StepResult

if TYPE_CHECKING:
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState

MIN_MIGRATIONS = 6
"""Below this many migrations in the round trip, a part of its own costs more (a clone, a
fork) than it saves."""


def worth_it(order: Sequence[MigrationKey], jobs: int) -> bool:
    return jobs > 1 and len(order) >= MIN_MIGRATIONS and can_fork()


@dataclasses.dataclass(frozen=True)
class Part:
    """What a forked part needs to run on its own clone."""

    alias: str
    server: Server
    template: str
    keep_options: bool
    session: Mapping[str, str]
    order: tuple[MigrationKey, ...]


def start(part: Part, *, loader: MigrationLoader, base: Sequence[MigrationKey],
          state: ProjectState, outcome: Outcome, cannot_reverse: set[MigrationKey],
          point: Callable[..., None], execution: Callable[..., Any]) -> Beside[Outcome]:
    """Fork the process that runs ``part`` (``execution(connection, order)`` makes its
    :class:`~guard.execution.roundtrip.Execution`); its outcome starts from ``outcome`` (the
    base's)."""

    def run() -> Outcome:
        from django.db import connections

        names: list[str] = []

        def renew() -> None:  # a clone of the base, for this part to start over on
            name = throwaway.new_name()  # this process's id in it: a sweep knows whose it is
            throwaway.create_database(part.server, name, template=part.template)
            names.append(name)
            point(part.alias, part.server, name, keep_options=part.keep_options,
                  session=part.session)

        try:
            renew()
            running = execution(connections[part.alias], part.order)
            running.outcome = dataclasses.replace(outcome, steps={}, denied=set())
            running.renew = renew
            return running.run(state)  # type: ignore[no-any-return]
        finally:
            connections.close_all()
            for name in names:
                throwaway.drop_database(part.server, name)

    return Beside(run, name=f"round trip of {len(part.order)} migration(s)", cleans_up=True)


def serial(order: Sequence[MigrationKey], parts: Sequence[tuple[Sequence[MigrationKey], Outcome]],
           base: Outcome) -> Outcome:
    """The parts' outcomes as one, in Django's order (see above)."""
    steps: dict[MigrationKey, list[StepResult]] = {}
    for keys, outcome in parts:
        for key in keys:
            if key in outcome.steps:
                steps[key] = list(outcome.steps[key])
    merged = dataclasses.replace(base, steps={key: steps[key] for key in order if key in steps},
                                 denied=set().union(*(o.denied for _, o in parts)))
    merged.half_done = any(o.half_done for _, o in parts)
    return merged
