"""The vocabulary shared by every part: migration keys, selections and step results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MigrationKey = tuple[str, str]
"""``(app_label, migration_name)``, as Django's migration graph names a node."""

Reason = Literal["changed", "dependent", "last-N"]
Step = Literal["forward", "backward", "forward-again"]
STEPS: tuple[Step, ...] = ("forward", "backward", "forward-again")
FindingKind = Literal["rewrite", "scan", "blocking-index", "lock"]
KINDS: tuple[FindingKind, ...] = ("rewrite", "scan", "blocking-index", "lock")


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
class Estimate:
    """How long a finding blocks its table at production size (:mod:`guard.safety.estimates`)."""

    seconds: tuple[float, float]
    """The range, low and high."""
    rows: int | None
    bytes: int | None
    basis: str
    """One line: the sizes, the measured speed and what the estimate assumes."""
    summary: str = ""
    """``rewrites app_order (41.2M rows, 18.3 GB with indexes): about 3-5 min of blocked reads
    and writes at this server's measured 95 MB/s``: the basis without its assumptions."""
    blocks: str = "reads and writes"
    """What the lock blocks: ``reads and writes`` or ``writes``."""

    def to_json(self) -> dict[str, object]:
        return {"seconds": [round(self.seconds[0], 3), round(self.seconds[1], 3)],
                "rows": self.rows, "bytes": self.bytes, "basis": self.basis,
                "blocks": self.blocks, "summary": self.summary}

    @classmethod
    def from_json(cls, data: dict[str, object] | None) -> Estimate | None:
        if not isinstance(data, dict):
            return None
        seconds = data.get("seconds")
        low, high = seconds if isinstance(seconds, list) and len(seconds) == 2 else (0.0, 0.0)
        rows, size = data.get("rows"), data.get("bytes")
        return cls(seconds=(float(low), float(high)),
                   rows=int(rows) if isinstance(rows, int) else None,
                   bytes=int(size) if isinstance(size, int) else None,
                   basis=str(data.get("basis", "")),
                   blocks=str(data.get("blocks", "reads and writes")),
                   summary=str(data.get("summary", "")))


@dataclass
class Finding:
    """What a step did to a table that already held rows, measured on the server."""

    kind: FindingKind
    table: str
    lock_mode: str
    """The strongest lock on ``table`` when it happened, as PostgreSQL names it."""
    seconds: float
    """The statement's time on the test data (for ``lock``: how long the lock was held)."""
    statement: str
    detail: str
    """One line: what happened, with the names filled in."""
    hint: str
    """What to do instead, as Django code where there is a safe sequence."""
    operation: int | None = None
    """The index of the operation that caused it, when known."""
    estimate: Estimate | None = None
    """Its blocking time at production size, with ``--stats`` (else None)."""


@dataclass
class LockHeld:
    """One row of the lock table that ``-v`` prints: a lock the step took on a table."""

    table: str
    lock_mode: str
    operation: int | None
    statement: str
    seconds: float
    """From the statement that took it until it was released (the commit)."""
    new: bool
    """The table did not exist before the step: nobody else could be waiting on it."""


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
    findings: list[Finding] = field(default_factory=list)
    """Locks, rewrites, scans and index builds measured while the step ran."""
    locks: list[LockHeld] = field(default_factory=list)
    """Every lock it took stronger than ROW EXCLUSIVE, for ``-v``."""
    blocked_by: list[MigrationKey] = field(default_factory=list)
    """For a step not run because a migration it depends on failed: those failures."""
