"""The report of a run: what was selected, what each step did, and the verdict.

:class:`Report` is what every writer reads (:mod:`guard.reporting.text`, ``json_report``,
``junit``, ``github``); it is filled in by :mod:`guard.check` from the parts below reporting
(the plan's irreversible operations, the checks, the round trip's outcome).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guard.execution.checks import CheckResult
from guard.execution.outcome import Outcome
from guard.planning.reversibility import Irreversible
from guard.planning.shards import Shard
from guard.rows.seeding import RowSettings
from guard.safety.policy import failing
from guard.timings import Phase
from guard.types import Finding, MigrationKey, Selected, StepResult, label

Found = tuple[str, MigrationKey, StepResult, Finding]
"""(alias, migration, the step it was measured in, the finding)."""


@dataclass
class Report:
    mode: str
    project_dir: str
    settings: str
    last: int
    database: dict[str, str] = field(default_factory=dict)
    selected: list[Selected] = field(default_factory=list)
    files: dict[MigrationKey, str] = field(default_factory=dict)
    """Each migration's file as shown (in the repository, for an exported commit)."""
    sources: dict[MigrationKey, str] = field(default_factory=dict)
    """Each migration's file as it is on disk now, to read it."""
    ignored: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    irreversible: list[tuple[Irreversible, bool]] = field(default_factory=list)
    """Each irreversible operation, and whether config accepts it."""
    accepted: dict[MigrationKey, str] = field(default_factory=dict)
    """Migrations whose failures are accepted (config or marker comment), with why."""
    checks: list[CheckResult] = field(default_factory=list)
    aliases: list[str] = field(default_factory=lambda: ["default"])
    """The aliases tested, in ``DATABASES`` order: each has a round trip of its own."""
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    """Each tested alias's round trip, as far as it went."""
    not_run: dict[MigrationKey, str] = field(default_factory=dict)
    """Selected migrations that ran on no tested database: the routers' verdict."""
    not_tested: list[str] = field(default_factory=list)
    """One line per alias whose migrations are not tested (not PostgreSQL), and why."""
    rows: RowSettings | None = None
    """The rows put in every base (None: the run made no database)."""
    fail_on: frozenset[str] = frozenset()
    """Kinds of finding that fail the run (``backward:KIND`` for a rollback's)."""
    budget: float | None = None
    """``--max-blocking-seconds``: findings fail only where their estimate is over it."""
    measured: bool = True
    """Locks, rewrites and scans were measured (not ``--no-safety``)."""
    seconds: float = 0.0
    """From the start of the interpreter that ran the command to the verdict."""
    timings: list[Phase] = field(default_factory=list)
    """Where those seconds went (:mod:`guard.timings`)."""
    shard: Shard | None = None
    """``--shard I/N``: which part of the full run this is."""
    merged: int = 0
    """How many shards' reports ``report merge`` made this one of (0: a run's own)."""
    verbose: bool = False
    """``-v``: the text report gives every finding its statement and hint."""

    @property
    def several(self) -> bool:
        """More than one alias is tested: every result names its alias."""
        return len(self.aliases) > 1

    def name(self, key: MigrationKey, alias: str) -> str:
        """``app.0002_x``, with `` on ledger`` when several aliases are tested."""
        return label(key) + (f" on {alias}" if self.several else "")

    def steps(self, key: MigrationKey, alias: str) -> list[StepResult]:
        outcome = self.outcomes.get(alias)
        return outcome.steps.get(key, []) if outcome is not None else []

    def base_errors(self) -> list[tuple[str, str]]:
        """(alias, error) for each alias whose base failed to apply."""
        return [(alias, o.base_error) for alias, o in self.outcomes.items() if o.base_error]

    def _failed(self) -> list[tuple[str, MigrationKey, StepResult]]:
        return [
            (alias, key, step)
            for alias, outcome in self.outcomes.items()
            for key, steps in outcome.steps.items()
            for step in steps
            if step.ok is False
        ]

    def failures(self) -> list[tuple[str, MigrationKey, StepResult]]:
        """Failed steps that count (alias, migration, step): not those of accepted migrations."""
        return [f for f in self._failed() if f[1] not in self.accepted]

    def rows_lost(self) -> list[tuple[str, MigrationKey, str]]:
        """(alias, migration, warning) for each table whose rows a rollback did not restore."""
        return [
            (alias, key, lost)
            for alias, outcome in self.outcomes.items()
            for key, steps in outcome.steps.items()
            for step in steps
            for lost in step.rows_lost
        ]

    def findings(self) -> list[Found]:
        """Every finding, in the order the steps ran."""
        return [
            (alias, key, step, finding)
            for alias, outcome in self.outcomes.items()
            for key, steps in outcome.steps.items()
            for step in steps
            for finding in step.findings
        ]

    def fails(self, found: Found) -> bool:
        """Whether a finding fails the run: its kind is in ``fail_on`` for its step, and its
        migration is not accepted."""
        _, key, step, finding = found
        return key not in self.accepted and failing(finding, step.step, self.fail_on, self.budget)

    def failing_findings(self) -> list[Found]:
        return [found for found in self.findings() if self.fails(found)]

    def reproduce(self) -> str:
        """For a failed run on generated rows: how to get the same rows again, or none."""
        rows = self.rows
        if rows is None or not rows.count or self.passed:
            return ""
        return (f"the databases held {rows.count} generated row(s) per model (data seed "
                f"{rows.data_seed}): --data-seed {rows.data_seed} makes the same rows again, "
                "--rows 0 checks without them")

    def accepted_failures(self) -> list[tuple[str, MigrationKey, StepResult]]:
        return [f for f in self._failed() if f[1] in self.accepted]

    @property
    def passed(self) -> bool:
        return (
            not self.failures()
            and not self.failing_findings()
            and not self.base_errors()
            and all(check.ok for check in self.checks)
            and all(accepted for _, accepted in self.irreversible)
        )

    def refused(self, key: MigrationKey) -> list[Irreversible]:
        """The irreversible operations of ``key`` that the config does not accept."""
        return [i for i, ok in self.irreversible if i.migration == key and not ok]

    def ran_on(self, key: MigrationKey, alias: str) -> bool:
        """Whether the routers let any operation of ``key`` run on ``alias``."""
        outcome = self.outcomes.get(alias)
        return outcome is None or key not in outcome.denied

    def passed_on(self, key: MigrationKey, alias: str) -> bool | None:
        """Whether every step of ``key`` on ``alias`` passed; None where it did not run."""
        steps = self.steps(key, alias)
        if steps and not self.ran_on(key, alias) and all(s.ok is not False for s in steps):
            return None
        if self._never_applied(steps):
            return None  # an earlier migration failed to apply (the step says which)
        return (
            key not in self.accepted and key not in self.not_run and bool(steps)
            and not self.refused(key) and all(s.ok is not False for s in steps)
            and not any(self.fails((alias, key, s, f)) for s in steps for f in s.findings)
        )

    def migration_passed(self, key: MigrationKey) -> bool:
        """Passed on every tested alias it ran on; one that ran nowhere never counts."""
        verdicts = [self.passed_on(key, alias) for alias in self.aliases]
        return True in verdicts and False not in verdicts

    def migration_failed(self, key: MigrationKey) -> bool:
        """Failed (or was refused or accepted) on some tested alias."""
        return False in [self.passed_on(key, alias) for alias in self.aliases]

    def blocked_on(self, key: MigrationKey, alias: str) -> list[MigrationKey]:
        """The failed migrations that kept ``key`` from being applied on ``alias`` (none: it
        was applied, or not for that reason). One blocked only from being applied again
        passed its other steps: its step says so."""
        steps = self.steps(key, alias)
        return list(steps[0].blocked_by) if steps and steps[0].step == "forward" else []

    def blocked_by(self, key: MigrationKey) -> list[MigrationKey]:
        """The failed migrations that kept ``key`` from being applied, on any alias."""
        found: list[MigrationKey] = []
        for alias in self.aliases:
            found += [k for k in self.blocked_on(key, alias) if k not in found]
        return found

    def blocked(self, key: MigrationKey) -> bool:
        """Never applied on some alias because a migration it needs failed there, and failed
        on none."""
        return bool(self.blocked_by(key)) and not self.migration_failed(key)

    def stopped(self, key: MigrationKey) -> bool:
        """Never applied on an alias it was to run on: a failure before it stopped the run."""
        return key not in self.not_run and any(
            self.ran_on(key, alias) and self._never_applied(self.steps(key, alias))
            for alias in self.aliases
        )

    @staticmethod
    def _never_applied(steps: list[StepResult]) -> bool:
        return bool(steps) and steps[0].step == "forward" and steps[0].ok is None
