"""The ``migration_guard`` management command: add ``"guard.contrib.django"`` to INSTALLED_APPS.

The app has no models and no migrations; it only provides the command.
"""
