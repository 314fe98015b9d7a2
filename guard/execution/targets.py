"""What the round trips of a run share: the tested aliases (targets), the run's settings, and
the two callbacks they are given (where an alias points, where the lines go)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from guard.database.server import Server
from guard.execution.observation import Observation
from guard.execution.outcome import Outcome
from guard.execution.roundtrip import Seeder
from guard.rows import seeding
from guard.rows.seeding import RowSettings, Seeded
from guard.types import MigrationKey, StepResult

if TYPE_CHECKING:
    from django.db.migrations.state import ProjectState

    from guard.safety.estimates import Estimator


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

    holding: bool
    """Each migration's line is held back, for :meth:`release` to say them in order."""

    def line(self, text: str = "") -> None: ...
    def release(self, order: Sequence[MigrationKey],
                steps: Mapping[MigrationKey, list[StepResult]]) -> None: ...
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
    jobs: int = 1
    """How many parts of the round trip may run at once (:mod:`guard.execution.jobs`)."""
    estimator: Estimator | None = None
    """With ``--stats``: each finding's blocking time at production size."""

    @property
    def seeder(self) -> Seeder | None:
        if not self.rows.active:
            return None
        rows = self.rows

        def seed(state: ProjectState, connection: Any) -> Seeded:
            return seeding.seed(state, connection, rows)

        return seed
