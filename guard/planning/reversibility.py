"""Which operations Django cannot unapply, found before any database work.

``IrreversibleError`` is raised mid-plan, after earlier members were already unapplied, so the
round trip asks first: ``Operation.reversible`` (a property on ``RunPython`` and ``RunSQL``), and
inside ``SeparateDatabaseAndState``, which claims to be reversible even when its database
operations are not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guard.types import MigrationKey, label

if TYPE_CHECKING:
    from django.db.migrations import Migration


@dataclass(frozen=True)
class Irreversible:
    migration: MigrationKey
    operation: str
    """``RunPython(forwards)``, ``operations[2]``-style description of the culprit."""
    index: int
    fix: str = ""
    """The operation written with a no-op reverse, when it can be written out: what to use if
    doing nothing on rollback is right."""

    def describe(self) -> str:
        return (
            f"{label(self.migration)}: operation {self.index + 1}, {self.operation}, "
            "cannot be reversed"
        )


def irreversible_operations(key: MigrationKey, migration: Migration) -> list[Irreversible]:
    """Operations that Django cannot unapply, found without touching a database."""
    return [
        Irreversible(key, text, index, fix)
        for index, operation in enumerate(migration.operations)
        for text, fix in _irreversible(operation)
    ]


def _irreversible(operation: Any) -> Iterator[tuple[str, str]]:
    """(what is wrong, the operation written with a no-op reverse or "") per culprit."""
    from django.db.migrations.operations import RunPython, RunSQL, SeparateDatabaseAndState

    if isinstance(operation, SeparateDatabaseAndState):
        # It claims to be reversible even when its database operations are not.
        for inner in operation.database_operations:
            yield from (
                (f"SeparateDatabaseAndState > {text}", fix) for text, fix in _irreversible(inner)
            )
        return
    if operation.reversible:
        return
    if isinstance(operation, RunPython):
        name = getattr(operation.code, "__name__", repr(operation.code))
        code = name if name.isidentifier() else "<the same code>"
        yield (f"RunPython({name}) has no reverse_code",
               f"migrations.RunPython({code}, reverse_code=migrations.RunPython.noop)")
    elif isinstance(operation, RunSQL):
        sql = " ".join(str(operation.sql).split())
        given = repr(operation.sql)
        if len(given) > 80:
            given = "<the same SQL>"
        yield (f"RunSQL({sql[:60]!r}) has no reverse_sql",
               f"migrations.RunSQL({given}, reverse_sql=migrations.RunSQL.noop)")
    else:
        yield f"{type(operation).__name__} is not reversible", ""
