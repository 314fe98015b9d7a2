"""A server that stops answering mid-run is an environment error (exit 2), not a migration's
fault: after each failed step the connection is tried again."""

from __future__ import annotations

from typing import Any

from guard.errors import FatalError
from guard.execution import verdicts
from guard.types import MigrationKey, label


class ServerGone(FatalError):
    """The server died or went away mid-run (exit 2)."""


def still_there(connection: Any, key: MigrationKey, step: str, exc: BaseException) -> None:
    """Raise :class:`ServerGone` unless the server answers ``connection`` again."""
    try:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        raise ServerGone(f"The PostgreSQL server stopped answering during the {step} step of "
                         f"{label(key)}: {verdicts.error(exc)}. Check that it is running (and "
                         "was not restarted or shut down), then run migration-guard again."
                         ) from exc
