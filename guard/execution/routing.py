"""What the routers allowed: Django's ``allow_migrate`` verdicts, recorded while a migration runs.

Each operation asks the routers itself: schema operations through ``allow_migrate_model`` (after
``Options.can_migrate``), ``RunPython`` and ``RunSQL`` through ``router.allow_migrate`` with their
hints. A denied operation is a silent no-op, so a migration that the routers send elsewhere
"passes" on a database where nothing of it ran. :func:`recording` tells the two apart: it wraps
the router's ``allow_migrate`` (``allow_migrate_model`` calls it through ``self``) for the time a
migration is applied, and the verdicts say whether any operation ran.

A migration whose operations never ask (``AlterModelOptions`` and other state-only changes) has
no verdict: Django applies it on every database, and so do we.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Verdicts:
    """The routers' answers for one migration on one database."""

    asked: list[tuple[str, bool]] = field(default_factory=list)
    """(app label, allowed) per question, in order."""

    @property
    def denied(self) -> bool:
        """The routers were asked and allowed none of its operations."""
        return bool(self.asked) and not any(allowed for _, allowed in self.asked)


@contextlib.contextmanager
def recording() -> Iterator[Verdicts]:
    """Record every ``router.allow_migrate`` answer while the block runs.

    The one place migration-guard bends Django's router: an instance attribute shadows the
    method for the block only, and the router's own answer is returned unchanged.
    """
    from django.db import router

    verdicts = Verdicts()
    original = router.allow_migrate

    def allow_migrate(db: str, app_label: str, **hints: Any) -> bool:
        allowed = bool(original(db, app_label, **hints))
        verdicts.asked.append((app_label, allowed))
        return allowed

    router.allow_migrate = allow_migrate  # type: ignore[method-assign] # see the docstring
    try:
        yield verdicts
    finally:
        del router.allow_migrate


def allowed_apps(alias: str, app_labels: set[str]) -> set[str]:
    """The apps whose migrations the routers allow on ``alias`` at all (no model hints): what
    would run on a database migration-guard does not test."""
    from django.db import router

    return {app for app in app_labels if router.allow_migrate(alias, app)}
