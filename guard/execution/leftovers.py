"""What a faulty rollback left behind is its fault alone.

The backward pass compares each rollback with the schema from before its migration. When one
rollback leaves a difference (a table it should have dropped, an index it re-creates under
another definition), every rollback after it (the migrations before it, in any app) would find
the same difference again and be blamed for it, and so would their forward-again steps. So the
differences found are kept, and each later comparison expects them: a migration is judged on
what its own steps did, and the step says whose leftovers it was compared with.
"""

from __future__ import annotations

from collections.abc import Sequence

from guard.execution import schema
from guard.types import MigrationKey, StepResult, label


class Leftovers:
    def __init__(self) -> None:
        self.items: list[schema.DiffItem] = []
        self.by: list[MigrationKey] = []

    def left(self, key: MigrationKey, found: schema.SchemaDiff) -> None:
        """``key``'s rollback left ``found``."""
        self.items.extend(found.items)
        self.by.append(key)

    def expected(self, snapshot: schema.Schema, result: StepResult) -> schema.Schema:
        """``snapshot`` with the leftovers in it (said on ``result``)."""
        if not self.items:
            return snapshot
        result.warnings.append("schema compared with what the rollback of "
                               + ", ".join(label(k) for k in self.by) + " left behind")
        patched = {kind: dict(objects) for kind, objects in snapshot.items()}
        for item in self.items:
            objects = patched.setdefault(item.kind, {})
            if item.what == "missing":
                objects.pop(item.object, None)
            elif item.what == "unexpected":
                objects[item.object] = item.definition
            elif item.field:
                objects[item.object] = {**objects.get(item.object, item.definition),
                                        item.field: item.found}
            else:
                objects[item.object] = item.found
        return patched


def not_compared(applied: Sequence[MigrationKey], before: Sequence[MigrationKey]) -> str:
    """Why a step's schema is not compared: other migrations than ``before`` are applied (empty:
    it is compared)."""
    extra = sorted(set(applied) - set(before))
    missing = sorted(set(before) - set(applied))
    if not (extra or missing):
        return ""
    return "schema not compared: " + "; ".join(
        ([", ".join(label(k) for k in extra) + " stayed applied"] if extra else [])
        + ([", ".join(label(k) for k in missing) + " is not applied"] if missing else []))
