"""The report of a run: what was selected, what each step did, and the verdict.

:class:`Report` is what every writer reads (:mod:`guard.reporting.text`, ``json_report``,
``junit``, ``github``); it is filled in by :mod:`guard.check` from the parts below reporting
(the plan's irreversible operations, the checks, the round trip's outcome).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guard.execution.checks import CheckResult
from guard.execution.roundtrip import Outcome
from guard.planning.reversibility import Irreversible
from guard.types import MigrationKey, Selected, StepResult


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
    outcome: Outcome = field(default_factory=Outcome)
    seconds: float = 0.0

    def failures(self) -> list[tuple[MigrationKey, StepResult]]:
        """Failed steps that count: not those of accepted migrations."""
        return [
            (key, step)
            for key, steps in self.outcome.steps.items()
            for step in steps
            if step.ok is False and key not in self.accepted
        ]

    def accepted_failures(self) -> list[tuple[MigrationKey, StepResult]]:
        return [
            (key, step)
            for key, steps in self.outcome.steps.items()
            for step in steps
            if step.ok is False and key in self.accepted
        ]

    @property
    def passed(self) -> bool:
        return (
            not self.failures()
            and not self.outcome.base_error
            and all(check.ok for check in self.checks)
            and all(accepted for _, accepted in self.irreversible)
        )

    def refused(self, key: MigrationKey) -> list[Irreversible]:
        """The irreversible operations of ``key`` that the config does not accept."""
        return [i for i, ok in self.irreversible if i.migration == key and not ok]

    def migration_passed(self, key: MigrationKey) -> bool:
        if key in self.accepted:
            return False
        steps = self.outcome.steps.get(key, [])
        return bool(steps) and not self.refused(key) and all(s.ok is not False for s in steps)
