"""What came of one alias's round trip: its base, each migration's steps, and what the routers
kept from running; filled in by :mod:`guard.execution.roundtrip`, read by the reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from guard.rows.seeding import Seeded
from guard.types import MigrationKey, StepResult


@dataclass
class Outcome:
    base_error: str = ""
    """Set when a migration outside the selection failed to apply: nothing else could run."""
    base_seconds: float = 0.0
    base_count: int = 0
    base_cached: bool = False
    base_reused: int = 0
    base_restored: bool = False
    """Base migrations that came from a cached template (all of them when ``base_cached``)."""
    steps: dict[MigrationKey, list[StepResult]] = field(default_factory=dict)
    denied: set[MigrationKey] = field(default_factory=set)
    """Applied here as no-ops: the routers allowed none of their operations on this database."""
    seeded: Seeded | None = None
    """The rows put in the base (None: none were asked for, or the base is empty)."""
    half_done: bool = False
    """A migration that failed to apply left its work half done (a non-atomic one): those
    before it were not rolled back."""
