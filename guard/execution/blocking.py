"""A failure blocks only what depends on it.

When a migration of the selection fails to apply (or to apply again), the migrations after it
that depend on it (Django's graph, any app) are not run, each saying which failure it waits
on; every other one goes on, on the database as it would be without the failed one. That is
the database as it is when the failed migration's transaction was rolled back, which
PostgreSQL does for an atomic migration. Where the failure left the database unlike that (a
non-atomic migration's committed half, rows a non-atomic ``RunPython`` wrote before it
raised), the round trip starts over on a new database (``renew``: a clone of the base, or an
empty one and the base built again), applies those that had applied again, and goes on from
there (:func:`start_over`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Protocol

from guard import timings
from guard.execution import contents, schema
from guard.execution.observation import Observation
from guard.types import MigrationKey, Step, StepResult, label

if TYPE_CHECKING:
    from django.db.migrations.graph import MigrationGraph
    from django.db.migrations.state import ProjectState


def needs(keys: Sequence[MigrationKey]) -> str:
    return ", ".join(label(k) for k in keys)


class Blocking:
    """The migrations still to run that wait on a failure, and on which ones."""

    def __init__(self, graph: MigrationGraph) -> None:
        self.graph = graph
        self.by: dict[MigrationKey, list[MigrationKey]] = {}

    def failed(self, key: MigrationKey, rest: Sequence[MigrationKey]) -> list[MigrationKey]:
        """``key`` failed: those of ``rest`` that depend on it are blocked (returned)."""
        waiting = set(rest)
        blocked = [k for k in self.graph.backwards_plan(key) if k in waiting and k != key]
        for k in blocked:
            self.by.setdefault(k, []).append(key)
        return blocked

    def waits(self, key: MigrationKey) -> list[MigrationKey]:
        return self.by.get(key, [])

    def result(self, key: MigrationKey, step: Step) -> StepResult:
        """The step of a blocked migration: not run, and why."""
        failures = self.by[key]
        verb = "failed to apply again" if step == "forward-again" else "failed"
        return StepResult(step, None, error=f"not run: needs {needs(failures)}, which {verb}",
                          blocked_by=list(failures))


class Run(Protocol):
    """What of the round trip (:class:`guard.execution.roundtrip.Execution`) going on after a
    failure needs."""

    renew: Callable[[], None] | None
    """Points the connection at a new database where the run started."""
    built_here: bool
    """The base was built in the run's database (no cached template)."""
    rows: list[contents.Contents]
    phase: str

    def build_base(self, done: Collection[MigrationKey] = ()) -> ProjectState | None: ...
    def reapply(self, state: ProjectState, key: MigrationKey) -> ProjectState: ...
    def observe(self, *, rows: bool = True) -> Observation: ...
    def record(self, key: MigrationKey, result: StepResult) -> None: ...


def goes_on(run: Run, key: MigrationKey, rest: Sequence[MigrationKey], blocked: Blocking,
            snapshots: list[schema.Schema], applied: list[MigrationKey],
            before: dict[MigrationKey, ProjectState]) -> bool:
    """After ``key`` failed to apply: whether the round trip goes on (its dependents blocked)
    on a database as the migrations ``applied`` left it; if not, ``rest`` is not run."""
    blocked.failed(key, rest)
    if not (applied or any(not blocked.waits(k) for k in rest)) or _as_before(
            run, snapshots, applied, before):
        return True
    for k in rest:
        run.record(k, blocked.result(k, "forward") if blocked.waits(k) else StepResult(
            "forward", None, error=f"not run: {label(key)} left its work half done"))
    return False


def _as_before(run: Run, snapshots: list[schema.Schema], applied: list[MigrationKey],
               before: dict[MigrationKey, ProjectState]) -> bool:
    """Is the database as the migrations applied left it (schema and rows)? If not, start over
    on a new one (False: that could not be done)."""
    return _same(run, snapshots) or start_over(run, applied, before, snapshots)


def _same(run: Run, snapshots: list[schema.Schema]) -> bool:
    seen = run.observe()
    return not schema.diff(snapshots[-1], seen.schema) and (seen.rows or {}) == run.rows[-1]


def start_over(run: Run, applied: list[MigrationKey], before: dict[MigrationKey, ProjectState],
               snapshots: list[schema.Schema]) -> bool:
    """A new database where the run started (``renew``), the base built again where it was
    built in the run's database, and ``applied`` applied again: True when its schema and rows
    are then those the first pass saw."""
    if run.renew is None:
        return False
    with timings.phase("starting over", "a new database after a half-done failure",
                       within=run.phase):
        run.renew()
        if run.built_here and run.build_base() is None:
            return False
        for key in applied:
            run.reapply(before[key].clone(), key)
        return _same(run, snapshots)
