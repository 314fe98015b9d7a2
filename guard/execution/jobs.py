"""``--jobs N``: the round trip's independent groups at once, each part on a clone of its own.

:func:`guard.planning.groups.pack` splits the selection into parts that share no migration.
The first part runs here, on the run's own database; each other one in a forked copy of this
process (:class:`guard.execution.beside.Beside`), made once the base's state is rendered (so no
part renders it again), which clones the base, runs its part, drops its clone and hands back
its outcome. :func:`serial` then puts the parts' outcomes together as the one round trip of
``--jobs 1`` would have them: that run applies the selection in Django's order and stops at
the first migration that fails to apply (then the others after it are not run, and when it
left its work half done, those before it are not rolled back), and once one fails to apply
again, none after it is applied again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from guard.database import throwaway
from guard.database.server import Server
from guard.execution.beside import Beside, can_fork
from guard.execution.outcome import Outcome
from guard.types import MigrationKey, StepResult, label

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

        name = throwaway.new_name()  # this process's id in it: a sweep knows whose it is
        throwaway.create_database(part.server, name, template=part.template)
        try:
            point(part.alias, part.server, name, keep_options=part.keep_options,
                  session=part.session)
            running = execution(connections[part.alias], part.order)
            running.outcome = dataclasses.replace(outcome, steps={}, denied=set())
            return running.run(state)  # type: ignore[no-any-return]
        finally:
            connections.close_all()
            throwaway.drop_database(part.server, name)

    return Beside(run, name=f"round trip of {len(part.order)} migration(s)", cleans_up=True)


def _first(order: Sequence[MigrationKey], steps: Mapping[MigrationKey, list[StepResult]],
           step: str) -> MigrationKey | None:
    """The first migration in ``order`` whose ``step`` failed."""
    for key in order:
        if any(s.step == step and s.ok is False for s in steps.get(key, ())):
            return key
    return None


def serial(order: Sequence[MigrationKey], parts: Sequence[tuple[Sequence[MigrationKey], Outcome]],
           base: Outcome) -> Outcome:
    """The parts' outcomes as one, as the round trip of ``--jobs 1`` has it (see above)."""
    steps: dict[MigrationKey, list[StepResult]] = {}
    part_of: dict[MigrationKey, int] = {}
    for index, (keys, outcome) in enumerate(parts):
        for key in keys:
            part_of[key] = index
            steps[key] = list(outcome.steps.get(key, []))
    position = {key: i for i, key in enumerate(order)}
    failed = _first(order, steps, "forward")
    if failed is not None:
        half_done = parts[part_of[failed]][1].half_done
        for key in order:
            if part_of[key] == part_of[failed]:
                continue
            if position[key] > position[failed]:
                steps[key] = [StepResult("forward", None,
                                         error=f"not run: {label(failed)} failed to apply")]
            elif half_done:
                steps[key] = [s for s in steps[key] if s.step == "forward"]
    again = _first(order, steps, "forward-again")
    if again is not None:
        for key in order:
            if part_of[key] == part_of[again] or position[key] < position[again]:
                continue
            steps[key] = [
                s if s.step != "forward-again" or s.error == "not run: it was not rolled back"
                else StepResult("forward-again", None,
                                error=f"not run: {label(again)} failed to apply again")
                for s in steps[key]
            ]
    merged = dataclasses.replace(base, steps={key: steps[key] for key in order if key in steps},
                                 denied=set().union(*(o.denied for _, o in parts)))
    merged.half_done = any(o.half_done for _, o in parts)
    return merged
