"""Forward, backward and forward again, with a schema snapshot after every step.

This module is the one chokepoint through which migration-guard applies or unapplies a migration.
It drives Django's ``MigrationExecutor`` one migration at a time with project states it derives
itself (Django's own backward path re-renders the state between every pair of plan members).

For migration i of the selected set D (in apply order), snapshot[i] is the schema before it and
snapshot[i + 1] the schema after it. Rolling i back must give snapshot[i] again; applying it again
must give snapshot[i + 1] again. A comparison is only made when exactly the migrations before i are
applied (an irreversible or failing reverse keeps its ancestors applied); otherwise the step says
why it was not compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from guard.database.server import one_line
from guard.errors import FatalError
from guard.execution import routing, schema, undo
from guard.planning.graph import ancestors_within
from guard.types import MigrationKey, StepResult, label

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState

OnStep = Callable[[MigrationKey, StepResult], None]


class ServerGone(FatalError):
    """The server died or went away mid-run (exit 2)."""



OnBase = Callable[[int, float], None]


@dataclass
class Outcome:
    base_error: str = ""
    """Set when a migration outside the selection failed to apply: nothing else could run."""
    base_seconds: float = 0.0
    base_count: int = 0
    base_cached: bool = False
    """The base came from a cached template database instead of being applied now."""
    steps: dict[MigrationKey, list[StepResult]] = field(default_factory=dict)
    denied: set[MigrationKey] = field(default_factory=set)
    """Applied here as no-ops: the routers allowed none of their operations on this database."""


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
        self.executor = _executor(connection, loader)
        self.outcome = Outcome()

    # -- the one place migrations are applied and unapplied ------------------------------------

    def _apply(self, state: ProjectState, key: MigrationKey) -> ProjectState:
        if "apps" not in state.__dict__:
            state.apps  # noqa: B018 - render once up front; Django does the same before applying
        return self.executor.apply_migration(state, self.graph.nodes[key])

    def _unapply(self, state_before: ProjectState, key: MigrationKey) -> None:
        # unapply_migration() wants the state *before* the migration and mutates it.
        self.executor.unapply_migration(state_before.clone(), self.graph.nodes[key])

    def _server_still_there(self, key: MigrationKey, step: str, exc: BaseException) -> None:
        """After a failed step: a server that no longer answers is an environment error (exit
        2), not the migration's fault."""
        try:
            self.connection.close()
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:
            raise ServerGone(
                f"The PostgreSQL server stopped answering during the {step} step of "
                f"{label(key)}: {_error(exc)}. Check that it is running (and was not restarted "
                "or shut down), then run migration-guard again."
            ) from exc

    def _timeout_hint(self, exc: BaseException) -> str:
        """What to say when PostgreSQL stopped a statement at one of our timeouts."""
        text = str(exc)
        for setting, words in (("statement_timeout", "statement timeout"),
                               ("lock_timeout", "lock timeout")):
            if words in text:
                return (
                    f"PostgreSQL stopped it after {setting} = {self.timeouts.get(setting, '?')}"
                    f" ([tool.migration-guard] {setting}). On an empty database a migration "
                    "that takes this long usually waits on a lock or does not end; raise the "
                    "setting if it is really that slow."
                )
        return ""

    def _snapshot(self) -> schema.Schema:
        with self.connection.cursor() as cursor:
            return schema.snapshot(cursor)

    # -- the run ---------------------------------------------------------------------------------

    def run(self, state: ProjectState | None = None) -> Outcome:
        """Build the base (unless ``state``, the state of a base already in the database, is
        given), then forward, backward and forward again."""
        if state is None:
            state = self.build_base()
        if state is None:
            return self.outcome
        # The state before each member of D, kept rendered as the forward pass goes: cloning a
        # rendered state costs far less than rendering one again for each unapply.
        before: dict[MigrationKey, ProjectState] = {}
        snapshots = [self._snapshot()]
        applied: list[MigrationKey] = []
        if not self._forward(state, before, snapshots, applied):
            return self.outcome
        unapplied = self._backward(before, snapshots, applied)
        self._forward_again(before, snapshots, applied, unapplied)
        return self.outcome

    def build_base(self) -> ProjectState | None:
        """Apply every migration outside D; the state after them, or None if one failed."""
        from django.db.migrations.state import ProjectState

        started = time.perf_counter()
        state = ProjectState(real_apps=self.loader.unmigrated_apps)
        for key in self.base:
            try:
                state = self._apply(state, key)
            except Exception as exc:
                self._server_still_there(key, "base", exc)
                self.outcome.base_error = (
                    f"{label(key)} (outside the selection) failed to apply from an empty "
                    f"database: {type(exc).__name__}: {one_line(exc)}"
                )
                return None
        self.outcome.base_seconds = time.perf_counter() - started
        self.outcome.base_count = len(self.base)
        if self.on_base is not None:
            self.on_base(self.outcome.base_count, self.outcome.base_seconds)
        return state

    def _record(self, key: MigrationKey, result: StepResult) -> None:
        if key in self.outcome.denied and result.ok is True:
            # Every step of it was a no-op here: it did not pass, it did not run.
            result.ok = None
            result.error = (f"not run on {self.connection.alias}: the routers allow none of its "
                            "operations here")
        self.outcome.steps.setdefault(key, []).append(result)
        self.on_step(key, result)

    def _skip_rest(self, keys: Sequence[MigrationKey], step: Any, why: str) -> None:
        for key in keys:
            self._record(key, StepResult(step=step, ok=None, error=why))

    def _forward(
        self,
        state: ProjectState,
        before: dict[MigrationKey, ProjectState],
        snapshots: list[schema.Schema],
        applied: list[MigrationKey],
    ) -> bool:
        for index, key in enumerate(self.order):
            started = time.perf_counter()
            if "apps" not in state.__dict__:
                state.apps  # noqa: B018 - render once; every later state is a cheap clone
            before[key] = state.clone()
            try:
                with routing.recording() as verdicts:
                    state = self._apply(state, key)
            except Exception as exc:
                self._record(key, StepResult(
                    "forward", False, time.perf_counter() - started, error=_error(exc),
                    hint=self._timeout_hint(exc) or _forward_hint(exc),
                ))
                self._server_still_there(key, "forward", exc)
                rest = self.order[index + 1:]
                self._skip_rest(rest, "forward", f"not run: {label(key)} failed to apply")
                return False
            if verdicts.denied:
                # Nothing of it ran here: the schema is the one before it.
                self.outcome.denied.add(key)
                snapshots.append(snapshots[-1])
            else:
                snapshots.append(self._snapshot())
            applied.append(key)
            self._record(key, StepResult("forward", True, time.perf_counter() - started))
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
        for index in range(len(self.order) - 1, -1, -1):
            key = self.order[index]
            if key in blocked:
                self._record(key, StepResult(
                    "backward", None,
                    error=f"not run: {label(blocked[key])} after it cannot be rolled back",
                ))
                continue
            if key in self.cannot_reverse:
                self._record(key, StepResult(
                    "backward", None, error="not run: the migration cannot be reversed",
                ))
                self._block(key, members, blocked)
                continue
            started = time.perf_counter()
            try:
                self._unapply(before[key], key)
            except Exception as exc:
                self._record(key, StepResult(
                    "backward", False, time.perf_counter() - started, error=_error(exc),
                    hint=self._timeout_hint(exc) or _backward_hint(key, exc, self.graph),
                ))
                self._server_still_there(key, "backward", exc)
                self._block(key, members, blocked)
                continue
            applied.remove(key)
            unapplied.add(key)
            result = StepResult("backward", True, time.perf_counter() - started)
            found = None if key in self.outcome.denied else self._compare(
                result, expected=snapshots[index], applied=applied, prefix=index,
                what="rolling it back does not restore the schema from before it",
            )
            if found:
                result.undo_sql = undo.statements(found.items)
                result.hint = undo.reverse_hint(label(key), result.undo_sql)
            self._record(key, result)
        return unapplied

    def _block(
        self,
        key: MigrationKey,
        members: set[MigrationKey],
        blocked: dict[MigrationKey, MigrationKey],
    ) -> None:
        for ancestor in ancestors_within(self.graph, key, members):
            if ancestor != key:
                blocked.setdefault(ancestor, key)

    def _forward_again(
        self,
        before: dict[MigrationKey, ProjectState],
        snapshots: list[schema.Schema],
        applied: list[MigrationKey],
        unapplied: set[MigrationKey],
    ) -> None:
        failed: MigrationKey | None = None
        for index, key in enumerate(self.order):
            if key not in unapplied:
                self._record(key, StepResult(
                    "forward-again", None, error="not run: it was not rolled back"))
                continue
            if failed is not None:
                self._record(key, StepResult(
                    "forward-again", None, error=f"not run: {label(failed)} failed to apply again"))
                continue
            started = time.perf_counter()
            try:
                self._apply(before[key].clone(), key)
            except Exception as exc:
                self._record(key, StepResult(
                    "forward-again", False, time.perf_counter() - started, error=_error(exc),
                    hint=(
                        f"{label(key)} applies on a fresh database but not after its own "
                        "rollback: the reverse leaves something behind (see the backward step) "
                        "that the forward then trips over."
                    ),
                ))
                self._server_still_there(key, "forward-again", exc)
                failed = key
                continue
            applied.append(key)
            applied.sort(key=self.order.index)
            result = StepResult("forward-again", True, time.perf_counter() - started)
            if key not in self.outcome.denied:
                self._compare(result, expected=snapshots[index + 1], applied=applied,
                              prefix=index + 1,
                              what="applying it again gives another schema than the first time")
            if result.schema_diff:
                result.hint = (
                    f"{label(key)} is not repeatable: after a rollback, applying it again ends "
                    "in a different schema. Usually the reverse left an object behind."
                )
            self._record(key, result)

    def _compare(
        self,
        result: StepResult,
        *,
        expected: schema.Schema,
        applied: list[MigrationKey],
        prefix: int,
        what: str,
    ) -> schema.SchemaDiff | None:
        if set(applied) != set(self.order[:prefix]):
            extra = sorted(set(applied) - set(self.order[:prefix]))
            result.warnings.append(
                "schema not compared: " + ", ".join(label(k) for k in extra)
                + " stayed applied"
            )
            return None
        started = time.perf_counter()
        found = schema.diff(expected, self._snapshot())
        result.seconds += time.perf_counter() - started
        result.warnings.extend(found.warnings)
        if found:
            result.ok = False
            result.error = what
            result.schema_diff = list(found.differences)
        return found


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(exc)}"


def _forward_hint(exc: BaseException) -> str:
    text = str(exc)
    if "already exists" in text:
        return ("An object it creates already exists: the base state already has it, "
                "or an earlier migration's reverse left it behind.")
    if "cannot run inside a transaction block" in text or "CONCURRENTLY" in text:
        return "Operations such as AddIndexConcurrently need `atomic = False` on the Migration."
    return "Run `python manage.py sqlmigrate` for it and try the SQL on a copy of your database."


def _backward_hint(key: MigrationKey, exc: BaseException, graph: Any) -> str:
    parents = [p.key for p in graph.node_map[key].parents if p.key[0] == key[0]]
    target = parents[0][1] if parents else "zero"
    return (
        f"Its reverse fails. Reproduce with `python manage.py migrate {key[0]} {target}` on a "
        "copy of the database, then fix reverse_code / reverse_sql or the order of operations."
    )


def _executor(connection: BaseDatabaseWrapper, loader: MigrationLoader) -> MigrationExecutor:
    """Django's executor on ``connection``, sharing our loader.

    ``MigrationExecutor.__init__`` builds a second ``MigrationLoader`` (the whole graph again,
    tens of milliseconds on a large project) that we would only throw away; apply_migration and
    unapply_migration use just the connection and the recorder.
    """
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.recorder import MigrationRecorder

    executor = MigrationExecutor.__new__(MigrationExecutor)
    executor.connection = connection
    executor.loader = loader
    executor.recorder = MigrationRecorder(connection)
    executor.progress_callback = None
    return executor
