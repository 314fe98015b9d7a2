"""The app that provides the ``migration_guard`` management command."""

from __future__ import annotations

from django.apps import AppConfig


class MigrationGuardConfig(AppConfig):
    name = "guard.contrib.django"
    label = "migration_guard"
    verbose_name = "migration-guard"
