"""The once-per-run checks that need no database: Django's system checks, conflicting leaves, and
whether the models match the migrations (what ``makemigrations --check`` reports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState


@dataclass
class CheckResult:
    name: str
    ok: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hint: str = ""


def system_checks() -> CheckResult:
    """Django's system checks, as ``manage.py check`` runs them, without a database.

    ``databases=[]``, not None: from Django 6.1, None means every alias, and model checks then
    connect to ask each database's features (a ``GeneratedField`` asks for the server version),
    while these checks run before the run's databases exist. The checks left out are those that
    judge a backend's features, which the run itself puts to the test on PostgreSQL.
    """
    from django.core import checks

    messages = [
        m for m in checks.run_checks(include_deployment_checks=False, databases=[])
        if not m.is_silenced()  # SILENCED_SYSTEM_CHECKS, as the check command honours it
    ]
    errors = [str(m) for m in messages if m.is_serious()]
    warnings = [str(m) for m in messages if not m.is_serious()]
    return CheckResult(
        "system checks",
        ok=not errors,
        errors=errors,
        warnings=warnings,
        hint="" if not errors else "Run `python manage.py check` and fix what it reports.",
    )


def conflicts(loader: MigrationLoader) -> CheckResult:
    """Two or more leaf migrations in one app, which ``migrate`` refuses."""
    found = loader.detect_conflicts()
    errors = [
        f"{app}: conflicting migrations {', '.join(sorted(names))} (more than one leaf)"
        for app, names in sorted(found.items())
    ]
    hint = " ".join(
        f"Run `python manage.py makemigrations --merge {app}`." for app in sorted(found)
    )
    return CheckResult("conflicting migrations", ok=not errors, errors=errors, hint=hint)


def missing_migrations(loader: MigrationLoader, state: ProjectState | None = None) -> CheckResult:
    """Model changes that have no migration, named per app (``state``: the state after every
    migration, if the caller has it already)."""
    from django.apps import apps
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.questioner import NonInteractiveMigrationQuestioner
    from django.db.migrations.state import ProjectState

    autodetector = MigrationAutodetector(
        state if state is not None else loader.project_state(),
        ProjectState.from_apps(apps),
        NonInteractiveMigrationQuestioner(specified_apps=set(), dry_run=True),
    )
    changes = autodetector.changes(graph=loader.graph)
    errors = []
    for app, migrations in sorted(changes.items()):
        described = [op.describe() for m in migrations for op in m.operations]
        errors.append(f"{app}: models have changes with no migration: {'; '.join(described)}")
    hint = " ".join(f"Run `python manage.py makemigrations {app}`." for app in sorted(changes))
    return CheckResult("models match migrations", ok=not errors, errors=errors, hint=hint)
