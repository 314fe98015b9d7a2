"""The vocabulary shared by every part: migration keys, selections and step results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MigrationKey = tuple[str, str]
"""``(app_label, migration_name)``, as Django's migration graph names a node."""

Reason = Literal["changed", "dependent", "last-N"]
Step = Literal["forward", "backward", "forward-again"]
STEPS: tuple[Step, ...] = ("forward", "backward", "forward-again")


def label(key: MigrationKey) -> str:
    """``app.0001_initial``: how a migration is named to people."""
    return f"{key[0]}.{key[1]}"


@dataclass(frozen=True)
class Selected:
    migration: MigrationKey
    reason: Reason
    because_of: tuple[MigrationKey, ...] = ()
    """For a dependent: the selected migrations it depends on."""


@dataclass
class StepResult:
    step: Step
    ok: bool | None
    """True passed, False failed, None skipped."""
    seconds: float = 0.0
    error: str = ""
    schema_diff: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hint: str = ""
    undo_sql: list[str] = field(default_factory=list)
    """For a reverse that leaves the schema different: SQL that would undo the difference."""
    rows_lost: list[str] = field(default_factory=list)
    """For a reverse that restores the schema: each table whose rows it did not restore."""
    operation: int | None = None
    """For a failed step: the index of the operation it failed in, when known."""
