"""Django's ``MigrationExecutor`` for the round trip, without a second migration loader."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.loader import MigrationLoader


def executor(connection: BaseDatabaseWrapper, loader: MigrationLoader) -> MigrationExecutor:
    """Django's executor on ``connection``, sharing our loader (its ``__init__`` would load the
    whole graph again); applying and unapplying use just the connection and the recorder."""
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.recorder import MigrationRecorder

    executor = MigrationExecutor.__new__(MigrationExecutor)
    executor.connection = connection
    executor.loader = loader
    executor.recorder = MigrationRecorder(connection)
    executor.progress_callback = None
    return executor
