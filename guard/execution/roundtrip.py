"""Forward, backward and forward again, with a schema snapshot after every step: the one place
migrations are applied and unapplied, one at a time through Django's ``MigrationExecutor``, with
project states derived here (Django's backward path re-renders one between every two).

For migration i of the selected set D (in apply order), snapshot[i] is the schema before it and
snapshot[i + 1] the one after. Rolling i back must give snapshot[i] again, applying it again
snapshot[i + 1]. A comparison is only made when exactly the migrations before i are applied (an
irreversible or failing reverse keeps its ancestors applied); else the step says why not."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from guard import timings
from guard.execution import blocking, contents, replay, routing, schema, undo, verdicts
from guard.execution.executor import executor
from guard.execution.gone import still_there
from guard.execution.leftovers import Leftovers, not_compared
from guard.execution.observation import Observation, observe
from guard.execution.outcome import Outcome
from guard.planning.graph import ancestors_within, needs_models
from guard.rows.seeding import Seeded
from guard.safety import findings
from guard.types import MigrationKey, StepResult, label

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState

    from guard.safety.estimates import Estimator

OnStep = Callable[[MigrationKey, StepResult], None]
OnBase = Callable[[int, float], None]
OnApply = Callable[[int, int, MigrationKey], None]
Seeder = Callable[["ProjectState", "BaseDatabaseWrapper"], Seeded]


class Execution:
    """One run of D on one database, which the caller created and will drop."""

    def __init__(
        self,
        loader: MigrationLoader,
        connection: BaseDatabaseWrapper,
        *,
        base: Sequence[MigrationKey],
        order: Sequence[MigrationKey],
        cannot_reverse: set[MigrationKey],
        on_step: OnStep,
        on_base: OnBase | None = None,
        timeouts: dict[str, str] | None = None,
        seeder: Seeder | None = None,
        measure: bool = True, estimator: Estimator | None = None,
    ) -> None:
        self.loader = loader
        self.graph = loader.graph
        self.connection = connection
        self.base = list(base)
        self.order = list(order)
        self.cannot_reverse = cannot_reverse
        self.on_step = on_step
        self.on_base = on_base
        self.timeouts = timeouts or {}
        self.seeder = seeder
        self.watch: verdicts.Watch | None = None
        self.gauge = findings.Gauge(connection, enabled=measure, estimator=estimator)
        self.rows: list[contents.Contents] = []
        """What the tables hold before each member of the selection, then after the last."""
        self.executor = executor(connection, loader)
        self.outcome = Outcome()
        self.on_apply: OnApply | None = None  # live progress while the base is built
        self.states: dict[MigrationKey, replay.Pairs | None] = {}
        """Per member of D, the states of its first forward (see :mod:`.replay`)."""
        self.phase = "round trip"
        """The phase of the run that the time of snapshots and renders counts in."""
        self.leftovers = Leftovers()  # what faulty rollbacks left, for later steps
        self.renew: Callable[[], None] | None = None
        """Points the connection at a new database where the run started (a clone of the
        base's template, or an empty one), for :meth:`start_over`."""
        self.built_here = False
        """The base was built in this run's database (no cached template)."""
        self.first: Observation | None = None
        """The database before the selection, when known without reading it (a spare clone
        read it when it was made)."""

    # -- the one place migrations are applied and unapplied ------------------------------------

    def _apply(self, state: ProjectState, key: MigrationKey, *, measure: bool = False,
               first: bool = False) -> ProjectState:
        """Apply ``key``; the ``first`` time, keep its states for the steps after it."""
        migration = self.graph.nodes[key]
        if "apps" not in state.__dict__ and needs_models(migration):
            with timings.tallied("rendering models", within=self.phase):
                state.apps  # noqa: B018 - render once up front, as Django does before applying
        with verdicts.watching(self.connection, migration, backwards=False) as self.watch, \
                self.gauge.measuring(self.watch, migration.atomic, on=measure), \
                replay.recording(migration, on=first) as recorded, \
                replay.replaying(migration, self.states.get(key)):
            state = self.executor.apply_migration(state, migration)
        if first:
            self.states[key] = replay.pairs(migration, recorded)
        return state

    def reapply(self, state: ProjectState, key: MigrationKey) -> ProjectState:
        """Apply ``key`` again, unjudged (a database made again: see :mod:`.blocking`)."""
        return self._apply(state, key)

    def _unapply(self, state_before: ProjectState, key: MigrationKey) -> None:
        migration = self.graph.nodes[key]
        with verdicts.watching(self.connection, migration, backwards=True) as self.watch, \
                self.gauge.measuring(self.watch, migration.atomic, on=True), \
                replay.replaying(migration, self.states.get(key)):
            self.executor.unapply_migration(state_before.clone(), migration)  # it mutates it

    def _judge(self, key: MigrationKey, result: StepResult) -> None:  # locks, rewrites, scans
        if key not in self.outcome.denied:
            self.gauge.judge(result, self.graph.nodes[key].operations)

    def _failure(self, exc: BaseException) -> str:
        """The failed step's error, with the operation, table, column and row it failed on."""
        return verdicts.explain(exc, self.watch, self.connection)

    def _record_failure(self, key: MigrationKey, result: StepResult) -> None:
        if self.watch is not None and self.watch.operation is not None:
            result.operation = self.watch.operation[0] - 1
        self.record(key, result)

    def observe(self, *, rows: bool = True) -> Observation:
        """The schema now, and with ``rows`` what the tables hold, in one round trip."""
        name = "schema and rows" if rows else "schema"
        with timings.tallied(f"snapshots: {name}", within=self.phase), \
                self.connection.cursor() as cursor:
            return observe(cursor, rows=rows)

    # -- the run ---------------------------------------------------------------------------------

    def run(self, state: ProjectState | None = None) -> Outcome:
        """Build the base (unless ``state``, that of a base in the database, is given), then
        forward, backward and forward again."""
        if state is None:
            self.built_here = True
            state = self.build_base()
        if state is None:
            return self.outcome
        # The state before each member of D, kept rendered as the forward pass goes: cloning a
        # rendered state costs far less than rendering one again for each unapply.
        before: dict[MigrationKey, ProjectState] = {}
        first = self.first if self.first is not None else self.observe()
        snapshots = [first.schema]
        self.rows = [first.rows or {}]
        applied: list[MigrationKey] = []
        if not self._forward(state, before, snapshots, applied):
            # A failure left its work half done where no new database could be had: those
            # before it would be blamed for it.
            self.outcome.half_done = bool(applied)
            return self.outcome
        unapplied = self._backward(before, snapshots, applied)
        self._forward_again(before, snapshots, applied, unapplied)
        return self.outcome

    def build_base(self, done: Collection[MigrationKey] = ()) -> ProjectState | None:
        """Apply every migration outside D but those ``done`` (the database holds them, and
        the state takes them first); the state after them, or None if one failed."""
        phase, self.phase = self.phase, "base"
        try:
            return self._build_base(done)
        finally:
            self.phase = phase

    def _build_base(self, done: Collection[MigrationKey]) -> ProjectState | None:
        from django.db.migrations.state import ProjectState

        started = time.perf_counter()
        state = ProjectState(real_apps=self.loader.unmigrated_apps)
        for key in (key for key in self.base if key in done):
            state = self.graph.nodes[key].mutate_state(state, preserve=False)
        missing = [key for key in self.base if key not in done]
        for index, key in enumerate(missing):
            if self.on_apply is not None:
                self.on_apply(index, len(missing), key)
            try:
                state = self._apply(state, key)
            except Exception as exc:
                still_there(self.connection, key, "base", exc)
                self.outcome.base_error = (
                    f"{label(key)} (outside the selection) failed to apply from an empty "
                    f"database: {self._failure(exc)}"
                )
                return None
        if self.seeder is not None and self.base:
            self.outcome.seeded = self.seeder(state, self.connection)
        self.outcome.base_seconds = time.perf_counter() - started
        self.outcome.base_count = len(self.base)
        if self.on_base is not None:
            self.on_base(self.outcome.base_count, self.outcome.base_seconds)
        return state

    def record(self, key: MigrationKey, result: StepResult) -> None:
        if key in self.outcome.denied and result.ok is True:
            # Every step of it was a no-op here: it did not pass, it did not run.
            result.ok = None
            result.error = (f"not run on {self.connection.alias}: the routers allow none of its "
                            "operations here")
        self.outcome.steps.setdefault(key, []).append(result)
        self.on_step(key, result)

    def _forward(
        self,
        state: ProjectState,
        before: dict[MigrationKey, ProjectState],
        snapshots: list[schema.Schema],
        applied: list[MigrationKey],
    ) -> bool:
        """Apply D once, observing after each; a failure blocks its dependents (see
        :mod:`.blocking`). False when one left the database half done and it could not be
        made again: then those before it stay applied, the rest unrun."""
        blocked = blocking.Blocking(self.graph)
        for index, key in enumerate(self.order):
            if blocked.waits(key):
                self.record(key, blocked.result(key, "forward"))
                continue
            started = time.perf_counter()
            if "apps" not in state.__dict__ and needs_models(self.graph.nodes[key]):
                with timings.tallied("rendering models", within=self.phase):
                    state.apps  # noqa: B018 - render once; every later state is a cheap clone
            before[key] = state.clone()
            try:
                with routing.recording() as routed:
                    state = self._apply(state, key, measure=True, first=True)
            except Exception as exc:
                self._record_failure(key, StepResult(
                    "forward", False, time.perf_counter() - started, error=self._failure(exc),
                    hint=verdicts.timeout_hint(exc, self.timeouts) or verdicts.forward_hint(
                        exc, self.watch, rows=any(n for n, _ in self.rows[-1].values())),
                ))
                still_there(self.connection, key, "forward", exc)
                state = before.pop(key)  # Django's apply changed it in place
                if not blocking.goes_on(self, key, self.order[index + 1:], blocked, snapshots,
                                        applied, before):
                    self.order = list(applied)
                    return False
                continue
            if routed.denied:
                # Nothing of it ran here: the schema is the one before it.
                self.outcome.denied.add(key)
                snapshots.append(snapshots[-1])
                self.rows.append(self.rows[-1])
            else:
                seen = self.observe()
                snapshots.append(seen.schema)
                self.rows.append(seen.rows or {})
            applied.append(key)
            result = StepResult("forward", True, time.perf_counter() - started)
            self._judge(key, result)
            self.record(key, result)
        self.order = list(applied)  # what goes back and forth
        return True

    def _backward(
        self,
        before: dict[MigrationKey, ProjectState],
        snapshots: list[schema.Schema],
        applied: list[MigrationKey],
    ) -> set[MigrationKey]:
        """Unapply D in reverse order; returns what was unapplied."""
        members = set(self.order)
        blocked: dict[MigrationKey, MigrationKey] = {}
        unapplied: set[MigrationKey] = set()
        entering: contents.Contents | None = self.rows[-1]
        """What the tables hold now, before the next rollback (None: not known)."""
        for index in range(len(self.order) - 1, -1, -1):
            key = self.order[index]
            if key in blocked:
                self.record(key, StepResult(
                    "backward", None,
                    error=f"not run: {label(blocked[key])} after it cannot be rolled back",
                ))
                continue
            if key in self.cannot_reverse:
                self.record(key, StepResult(
                    "backward", None, error="not run: the migration cannot be reversed",
                ))
                self._block(key, members, blocked)
                continue
            started = time.perf_counter()
            try:
                self._unapply(before[key], key)
            except Exception as exc:
                self._record_failure(key, StepResult(
                    "backward", False, time.perf_counter() - started, error=self._failure(exc),
                    hint=(verdicts.timeout_hint(exc, self.timeouts)
                          or verdicts.backward_hint(key, self.graph)),
                ))
                still_there(self.connection, key, "backward", exc)
                self._block(key, members, blocked)
                entering = None
                continue
            applied.remove(key)
            unapplied.add(key)
            result = StepResult("backward", True, time.perf_counter() - started)
            self._judge(key, result)
            found, now = (None, None) if key in self.outcome.denied else self._compare(
                result, expected=snapshots[index], applied=applied, prefix=index,
                what="rolling it back does not restore the schema from before it", rows=True,
            )
            if found:
                self.leftovers.left(key, found)
                result.undo_sql = undo.statements(found.items)
                result.hint = undo.reverse_hint(label(key), result.undo_sql)
            elif found is not None and now is not None:  # the schema is back: are the rows?
                result.rows_lost = contents.lost(self.rows[index], now,
                                                 left=self.rows[index + 1], entering=entering)
                entering = now
            if found is None or found:
                entering = None if key not in self.outcome.denied else entering
            self.record(key, result)
        return unapplied

    def _block(self, key: MigrationKey, members: set[MigrationKey],
               blocked: dict[MigrationKey, MigrationKey]) -> None:
        for ancestor in ancestors_within(self.graph, key, members) - {key}:
            blocked.setdefault(ancestor, key)

    def _forward_again(
        self,
        before: dict[MigrationKey, ProjectState],
        snapshots: list[schema.Schema],
        applied: list[MigrationKey],
        unapplied: set[MigrationKey],
    ) -> None:
        blocked = blocking.Blocking(self.graph)
        half_done: MigrationKey | None = None
        for index, key in enumerate(self.order):
            if key not in unapplied:
                self.record(key, StepResult(
                    "forward-again", None, error="not run: it was not rolled back"))
                continue
            if blocked.waits(key):
                self.record(key, blocked.result(key, "forward-again"))
                continue
            if half_done is not None:
                self.record(key, StepResult(
                    "forward-again", None,
                    error=f"not run: {label(half_done)} failed to apply again and left its "
                          "work half done"))
                continue
            started = time.perf_counter()
            try:
                self._apply(before[key].clone(), key)
            except Exception as exc:
                self._record_failure(key, StepResult(
                    "forward-again", False, time.perf_counter() - started,
                    error=self._failure(exc),
                    hint=verdicts.forward_again_hint(key),
                ))
                still_there(self.connection, key, "forward-again", exc)
                blocked.failed(key, self.order[index + 1:])
                if not self.graph.nodes[key].atomic:  # what it committed stays: stop here
                    half_done = key
                continue
            applied.append(key)
            applied.sort(key=self.order.index)
            result = StepResult("forward-again", True, time.perf_counter() - started)
            if key not in self.outcome.denied:
                self._compare(result, expected=snapshots[index + 1], applied=applied,
                              prefix=index + 1,
                              what="applying it again gives another schema than the first time")
            if result.schema_diff:
                result.hint = verdicts.not_repeatable_hint(key)
            self.record(key, result)

    def _compare(
        self,
        result: StepResult,
        *,
        expected: schema.Schema,
        applied: list[MigrationKey],
        prefix: int,
        what: str,
        rows: bool = False,
    ) -> tuple[schema.SchemaDiff | None, contents.Contents | None]:
        """The schema now against ``expected`` (None: not compared), and with ``rows`` what
        the tables hold now, read with it."""
        why_not = not_compared(applied, self.order[:prefix])
        if why_not:
            result.warnings.append(why_not)
            return None, None
        started = time.perf_counter()
        seen = self.observe(rows=rows)
        found = schema.diff(self.leftovers.expected(expected, result), seen.schema)
        result.seconds += time.perf_counter() - started
        result.warnings.extend(found.warnings)
        if found:
            result.ok = False
            result.error = what
            result.schema_diff = list(found.differences)
        return found, seen.rows
