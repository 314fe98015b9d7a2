"""The states a migration's first forward ran with, kept for its backward and forward-again steps.

Django's ``Migration.unapply`` starts by computing the project state before and after each
operation again, running every operation's ``state_forwards``, and ``Migration.apply`` does the
same on the way up. That re-renders the models each operation touches, and for a relation every
model related to them: most of a step's time in a big project. The round trip has already
computed these states once, in the first forward, which handed each operation its
``from_state`` and ``to_state``.

:func:`recording` keeps a copy of each pair while the first forward runs (Django's own
``apply``, untouched). :func:`replaying` then stands in for ``apply`` / ``unapply`` of that one
migration. It runs the operations' database side with fresh copies of the same states, under
Django's rule for a transaction per operation, so the backward and forward-again steps send the
same SQL as Django's methods would, without rebuilding a state. A migration whose class has
its own ``apply`` or ``unapply``, or whose operations did not all run, is not replayed: Django's
methods run as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration
    from django.db.migrations.state import ProjectState

Pairs = list[tuple["ProjectState", "ProjectState"]]
"""Per operation, in order: (the state before it, the state after it)."""


Recorded = dict[int, "ProjectState"]
"""The state before operation i, by i; the one after the last under ``len(operations)``."""


@contextmanager
def _shadowing(target: Any, **attributes: Any) -> Iterator[None]:
    """Set instance attributes on ``target`` for the block, then put back what was there."""
    saved = {name: target.__dict__[name] for name in attributes if name in target.__dict__}
    target.__dict__.update(attributes)
    try:
        yield
    finally:
        for name in attributes:
            target.__dict__.pop(name, None)
        target.__dict__.update(saved)


@contextmanager
def recording(migration: Migration, *, on: bool = True) -> Iterator[Recorded]:
    """Copies of the states the operations' ``database_forwards`` are called with (nothing is
    kept unless ``on``). The state after one operation is the state before the next.

    Wraps whatever ``database_forwards`` each operation has now (the watch's wrapper included)
    and puts it back afterwards."""
    recorded: Recorded = {}
    last = len(migration.operations) - 1
    with ExitStack() as stack:
        for index, operation in enumerate(migration.operations if on else ()):

            def keeping(app_label: str, schema_editor: Any, from_state: ProjectState,
                        to_state: ProjectState, *args: Any, _index: int = index,
                        _inner: Any = operation.database_forwards, **kwargs: Any) -> Any:
                if _index not in recorded:
                    recorded[_index] = from_state.clone()
                    if _index == last:
                        recorded[_index + 1] = to_state.clone()
                return _inner(app_label, schema_editor, from_state, to_state, *args, **kwargs)

            stack.enter_context(_shadowing(operation, database_forwards=keeping))
        yield recorded


def pairs(migration: Migration, recorded: Recorded) -> Pairs | None:
    """The recorded states as (before, after) per operation, or None when they cannot stand in
    for Django's: an operation did not run, or the migration's class applies or unapplies in
    its own way."""
    from django.db.migrations.migration import Migration

    kind = type(migration)
    if kind.apply is not Migration.apply or kind.unapply is not Migration.unapply:
        return None
    count = len(migration.operations)
    if sorted(recorded) != list(range(count + 1)):
        return None
    return [(recorded[index], recorded[index + 1]) for index in range(count)]


def _atomic_operation(migration: Migration, operation: Any) -> bool:
    return bool(operation.atomic or (migration.atomic and operation.atomic is not False))


@contextmanager
def replaying(migration: Migration, states: Pairs | None) -> Iterator[None]:
    """While the block runs, ``migration.apply`` and ``unapply`` use ``states`` instead of
    computing them (nothing changes when ``states`` is None)."""
    if states is None:
        yield
        return
    from django.db import transaction
    from django.db.migrations.exceptions import IrreversibleError

    def run(schema_editor: Any, operation: Any, method: str, first: ProjectState,
            second: ProjectState) -> None:
        call = getattr(operation, method)
        if not schema_editor.atomic_migration and _atomic_operation(migration, operation):
            # As Django: an atomic operation inside a non-atomic migration gets a transaction.
            with transaction.atomic(schema_editor.connection.alias):
                call(migration.app_label, schema_editor, first.clone(), second.clone())
        else:
            call(migration.app_label, schema_editor, first.clone(), second.clone())

    def apply(project_state: ProjectState, schema_editor: Any, collect_sql: bool = False
              ) -> ProjectState:
        assert not collect_sql, "the round trip never collects SQL"
        for operation, (before, after) in zip(migration.operations, states, strict=True):
            run(schema_editor, operation, "database_forwards", before, after)
        return project_state

    def unapply(project_state: ProjectState, schema_editor: Any, collect_sql: bool = False
                ) -> ProjectState:
        assert not collect_sql, "the round trip never collects SQL"
        for operation in migration.operations:
            if not operation.reversible:
                raise IrreversibleError(f"Operation {operation} in {migration} is not reversible")
        steps = list(zip(migration.operations, states, strict=True))
        for operation, (before, after) in reversed(steps):
            run(schema_editor, operation, "database_backwards", after, before)
        return project_state

    with _shadowing(migration, apply=apply, unapply=unapply):
        yield
