"""Which migrations a run tests: the files it was given, or the last N of each project app.

Files are matched to migrations through the module each loaded ``Migration`` came from, by real
path, never by string suffix; so ``MIGRATION_MODULES`` overrides work, and a file that a squash
replaced maps to its squash (from an empty database the squash stands for it).
"""

from __future__ import annotations

import contextlib
import os
import site
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from guard.planning.graph import full_order, migration_file
from guard.types import MigrationKey, Selected

if TYPE_CHECKING:
    from django.db.migrations.loader import MigrationLoader


@dataclass(frozen=True)
class PathSelection:
    chosen: dict[MigrationKey, Selected]
    ignored: tuple[tuple[Path, str], ...]
    """Paths that are not migrations of an installed app, with why."""
    notes: tuple[str, ...] = ()


def files_to_keys(loader: MigrationLoader) -> dict[Path, MigrationKey]:
    """The real path of every migration file on disk, replaced ones included."""
    found: dict[Path, MigrationKey] = {}
    folders: dict[str, str] = {}  # a migrations folder holds many: its real path once
    for key, migration in loader.disk_migrations.items():
        filename = migration_file(migration)
        if not filename:
            continue
        if os.path.islink(filename):
            real = os.path.realpath(filename)
        else:
            folder, name = os.path.split(filename)
            if folder not in folders:
                folders[folder] = os.path.realpath(folder)
            real = os.path.join(folders[folder], name)
        found[Path(real)] = key
    return found


def replaced_by(loader: MigrationLoader) -> dict[MigrationKey, MigrationKey]:
    """For each migration that a squash in the graph replaces: that squash."""
    squashes: dict[MigrationKey, MigrationKey] = {}
    for key, migration in loader.disk_migrations.items():
        if key in loader.graph.nodes:
            for app_label, name in migration.replaces or ():
                squashes[(app_label, name)] = key
    return squashes


NOT_A_MIGRATION = "not a migration of an installed app"


def not_loaded_reasons() -> dict[Path, str]:
    """Why Django loads no migration from a file, by real path: each migrations package's
    ``__init__.py``; and each app's default ``migrations`` folder (the folder's path) when the
    app's ``MIGRATION_MODULES`` entry disables its migrations or moves them elsewhere."""
    from django.apps import apps
    from django.db.migrations.loader import MIGRATIONS_MODULE_NAME, MigrationLoader

    reasons: dict[Path, str] = {}
    for config in apps.get_app_configs():
        module, explicit = MigrationLoader.migrations_module(config.label)
        default = f"{config.name}.{MIGRATIONS_MODULE_NAME}"
        if not explicit or module == default:
            continue
        folder = Path(os.path.realpath(Path(config.path) / MIGRATIONS_MODULE_NAME))
        if module is None:
            reasons[folder] = (
                f"migrations of app {config.label!r} are disabled by MIGRATION_MODULES "
                f"({config.label!r}: None), so Django never loads this file"
            )
        else:
            reasons[folder] = (
                f"app {config.label!r} takes its migrations from {module!r} "
                f"(MIGRATION_MODULES {{{config.label!r}: {module!r}}}), not from this folder: "
                "a stale file Django never loads"
            )
    for folder, app_label in migration_folders().items():
        reasons[folder / "__init__.py"] = (
            f"the __init__.py of the migrations package of app {app_label!r}, not a migration"
        )
    return reasons


def select_paths(loader: MigrationLoader, paths: Iterable[Path]) -> PathSelection:
    by_file = files_to_keys(loader)
    squashes = replaced_by(loader)
    reasons: dict[Path, str] | None = None
    chosen: dict[MigrationKey, Selected] = {}
    ignored: list[tuple[Path, str]] = []
    notes: list[str] = []
    for path in paths:
        real = Path(os.path.realpath(path))
        if not real.exists():
            ignored.append((path, "no such file"))
            continue
        key = by_file.get(real)
        if key is None:
            if reasons is None:
                reasons = not_loaded_reasons()
            ignored.append((path, reasons.get(real, reasons.get(real.parent, NOT_A_MIGRATION))))
            continue
        if key not in loader.graph.nodes:
            squash = squashes.get(key)
            if squash is None:
                ignored.append((path, "not in the migration graph"))
                continue
            notes.append(f"{key[0]}.{key[1]} is replaced by the squashed {squash[0]}.{squash[1]}")
            key = squash
        chosen.setdefault(key, Selected(key, "changed"))
    return PathSelection(chosen=chosen, ignored=tuple(ignored), notes=tuple(notes))


def _installed_locations() -> list[str]:
    """Folders where third-party packages are installed, as real paths."""
    places = set()
    for name in ("purelib", "platlib"):
        places.add(sysconfig.get_paths()[name])
    with contextlib.suppress(AttributeError):  # old virtualenvs' site module lacks it
        places.update(site.getsitepackages())
    places.add(site.getusersitepackages())
    return [os.path.realpath(p) for p in places if p]


def project_app_labels() -> list[str]:
    """Installed apps that belong to the project: not Django's own, not from site-packages."""
    import django
    from django.apps import apps

    django_dir = os.path.realpath(os.path.dirname(django.__file__))
    installed = _installed_locations()
    labels = []
    for config in apps.get_app_configs():
        where = os.path.realpath(config.path)
        if where == django_dir or where.startswith(django_dir + os.sep):
            continue
        if config.name.startswith("guard."):  # our own management-command app
            continue
        if any(where == p or where.startswith(p + os.sep) for p in installed):
            continue
        labels.append(config.label)
    return labels


def select_last(
    loader: MigrationLoader, last: int, app_labels: Iterable[str]
) -> dict[MigrationKey, Selected]:
    """The last ``last`` migrations of each of ``app_labels``, in apply order."""
    wanted = set(app_labels)
    per_app: dict[str, list[MigrationKey]] = {}
    for key in full_order(loader.graph):
        if key[0] in wanted:
            per_app.setdefault(key[0], []).append(key)
    chosen: dict[MigrationKey, Selected] = {}
    for keys in per_app.values():
        for key in keys[-last:]:
            chosen[key] = Selected(key, "last-N")
    return chosen


def migration_folders() -> dict[Path, str]:
    """The real folder of each installed app's migrations package, with the app's label."""
    import importlib.util

    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    folders: dict[Path, str] = {}
    for config in apps.get_app_configs():
        module, _explicit = MigrationLoader.migrations_module(config.label)
        if module is None:
            continue
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            folders[Path(os.path.realpath(location))] = config.label
    return folders


def deleted_keys(paths: Iterable[Path]) -> dict[MigrationKey, Path]:
    """The migrations that deleted files were, by the folder they were in."""
    folders = migration_folders()
    found: dict[MigrationKey, Path] = {}
    for path in paths:
        app = folders.get(Path(os.path.realpath(path.parent)))
        if app is not None and not path.name.startswith("_"):
            found[(app, path.stem)] = path
    return found


def in_migrations_folder(path: Path, folders: Iterable[Path]) -> bool:
    real = Path(os.path.realpath(path.parent))
    return real in set(folders) or "migrations" in path.parts[:-1]
