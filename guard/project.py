"""The Django project under test: its settings module, Django's start-up, and its databases.

Before Django starts, every entry in ``DATABASES`` is pointed at a database name of ours that does
not exist yet, so nothing that runs during start-up can reach the project's own databases. Once a
server is provided, :func:`point_databases` fills in where that name lives.

When Django is already running (the ``migration_guard`` management command), :func:`load`
adopts it instead: every entry is pointed at that name at once, the connections the project's
start-up may have opened are closed and thrown away, and :func:`release` puts the entries back
when the run is over.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.config import CheckOptions, settings_from_manage_py
from guard.database.aliases import is_postgres
from guard.database.server import Server
from guard.errors import FatalError, location


@dataclass(frozen=True)
class Project:
    directory: Path
    settings_module: str
    settings_origin: str
    """Where the settings module name came from, for the output."""
    databases: Mapping[str, Mapping[str, Any]]
    """A copy of the project's own ``DATABASES``, as its settings wrote it."""


def settings_module(options: CheckOptions) -> tuple[str, str]:
    """The settings module and where it came from, in the documented order."""
    if options.settings:
        return options.settings, "--settings"
    env = os.environ.get("DJANGO_SETTINGS_MODULE")
    if env:
        return env, "DJANGO_SETTINGS_MODULE"
    from_manage = settings_from_manage_py(options.project_dir)
    if from_manage:
        return from_manage, "manage.py"
    if options.config_settings:
        return options.config_settings, "[tool.migration-guard] settings"
    if not (options.project_dir / "manage.py").exists():
        raise FatalError(
            f"{options.project_dir} does not look like a Django project: there is no manage.py "
            "and no settings module was given. Run migration-guard from the project's folder, "
            "or pass --project-dir DIR and --settings MODULE (or set DJANGO_SETTINGS_MODULE)."
        )
    raise FatalError(
        f"No Django settings module found for {options.project_dir}: manage.py does not set "
        "DJANGO_SETTINGS_MODULE. Pass --settings MODULE, set DJANGO_SETTINGS_MODULE, or add "
        "settings = \"...\" to [tool.migration-guard] in pyproject.toml."
    )


def django_started() -> bool:
    """Whether Django is already set up in this process (a management command runs us)."""
    if "django.apps" not in sys.modules:
        return False
    from django.apps import apps

    return apps.ready


def load(options: CheckOptions, placeholder_name: str) -> Project:
    """Import the settings and start Django with every database pointed at ``placeholder_name``.

    When Django is already running, adopt it instead (see :func:`adopt`)."""
    if django_started():
        return adopt(options, placeholder_name)
    module, origin = settings_module(options)
    directory = str(options.project_dir)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    os.environ["DJANGO_SETTINGS_MODULE"] = module
    try:
        import django
        from django.conf import settings
    except ImportError:
        raise FatalError(
            f"Django is not installed in this interpreter ({sys.executable}). Run migration-guard "
            "with the project's own Python, e.g. the one in its virtualenv."
        ) from None
    try:
        importlib.import_module(module)
        databases = settings.DATABASES
    except Exception as exc:
        where = location(exc, options.project_dir)
        raise FatalError(
            f"The settings module {module} (from {origin}) failed to import: "
            f"{type(exc).__name__}: {exc}" + (f" at {where}" if where else "") + ". "
            "Fix it so that `python manage.py check` works, or pass --settings."
        ) from exc
    _postgres_default(module, databases)
    snapshot = {alias: _copy(entry) for alias, entry in databases.items()}
    for alias, entry in databases.items():
        _original_options[alias] = dict(entry.get("OPTIONS") or {})
        _point(entry, alias, placeholder_name)
    try:
        django.setup()
    except Exception as exc:
        where = location(exc, options.project_dir)
        raise FatalError(
            f"Django failed to start with {module}: {type(exc).__name__}: {exc}"
            + (f" at {where}" if where else "")
            + ". Fix it so that `python manage.py check` works."
        ) from exc
    return Project(
        directory=options.project_dir,
        settings_module=module,
        settings_origin=origin,
        databases=snapshot,
    )


def _postgres_default(module: str, databases: object) -> dict[str, Any]:
    """``DATABASES['default']``, checked to be there and to be PostgreSQL."""
    default = databases.get("default") if isinstance(databases, dict) else None
    if not default or not isinstance(default, dict):
        raise FatalError(
            f"{module}: DATABASES has no 'default' entry; migration-guard migrates the default "
            "database's engine on a server of its own."
        )
    engine = str(default.get("ENGINE", ""))
    if not is_postgres(engine):
        raise FatalError(
            f"{module}: DATABASES['default']['ENGINE'] is {engine!r}. migration-guard tests "
            "migrations on PostgreSQL only; use django.db.backends.postgresql (or a "
            "PostgreSQL-based engine such as PostGIS)."
        )
    return default


_adopted: dict[str, dict[str, Any]] = {}
"""When Django was already running: each ``DATABASES`` entry as it was before :func:`adopt`
pointed it at our database, for :func:`release` to put back."""


def adopt(options: CheckOptions, placeholder_name: str) -> Project:
    """Take over the Django that already runs in this process, without touching its databases.

    Django's connections share the ``DATABASES`` dicts, so pointing each entry at
    ``placeholder_name`` in place redirects every later connection at once; a connection that
    the project's start-up already opened is closed and its wrapper thrown away (it may hold
    facts about the project's server, such as its version), so the next one is made afresh.
    """
    from django.conf import settings
    from django.db import connections

    module = settings.SETTINGS_MODULE or "settings.configure()"
    if options.settings and options.settings != module:
        raise FatalError(
            f"Django is already running with the settings {module}, not {options.settings}: "
            "one process runs one project. Drop --settings, or run `migration-guard check` "
            "from a shell."
        )
    databases = settings.DATABASES
    # Django fills in its defaults (ATOMIC_REQUESTS, CONN_MAX_AGE, ...) the first time its
    # connections are used; have that done now, so that what release() puts back has them.
    with contextlib.suppress(Exception):  # a broken DATABASES is reported just below
        list(connections)
    if not _adopted:
        # Copies deep enough that nothing we do later reaches them (we replace, never edit,
        # the nested dicts).
        for alias, entry in databases.items():
            _adopted[alias] = _copy(entry)
    _postgres_default(module, _adopted)
    for alias, entry in databases.items():
        original = _adopted.get(alias, entry)
        _original_options[alias] = dict(original.get("OPTIONS") or {})
        _point(entry, alias, placeholder_name)
    _drop_connections()
    return Project(
        directory=options.project_dir,
        settings_module=module,
        settings_origin="the running Django",
        databases={alias: _copy(entry) for alias, entry in _adopted.items()},
    )


def release() -> None:
    """After a run in an adopted Django: close our connections and put every ``DATABASES``
    entry back as the project's settings had it."""
    if not _adopted:
        return
    from django.conf import settings

    _drop_connections()
    for alias, entry in settings.DATABASES.items():
        if alias in _adopted:
            entry.clear()
            entry.update(_adopted[alias])
    _adopted.clear()
    _original_options.clear()


def _drop_connections() -> None:
    """Close this thread's open connections and forget their wrappers."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
        del connections[connection.alias]


def _copy(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A ``DATABASES`` entry, copied deep enough that nothing done later reaches it (we replace,
    never edit, the nested dicts)."""
    return {key: dict(value) if isinstance(value, dict) else value for key, value in entry.items()}


def _point(entry: dict[str, Any], alias: str, name: str) -> None:
    """Aim one ``DATABASES`` entry at a name of ours (Django's connections share the dict)."""
    entry.setdefault("TEST", {})
    engine = str(entry.get("ENGINE") or "django.db.backends.postgresql")
    if "sqlite3" in engine:
        entry["NAME"] = ":memory:"  # never a file of the project's, nor a new one of ours
    else:
        entry["NAME"] = name
    entry["ENGINE"] = engine


_original_options: dict[str, dict[str, Any]] = {}
"""Each alias's OPTIONS as the project's settings wrote them, before we touched them."""


def original_options(alias: str = "default") -> dict[str, Any]:
    """An alias's OPTIONS as the project's settings wrote them."""
    return dict(_original_options.get(alias, {}))


def point(
    alias: str, server: Server, name: str, *, keep_options: bool,
    session: Mapping[str, str] | None = None,
) -> None:
    """Aim ``alias`` at our database ``name`` on ``server``, now that it exists there.

    ``session`` settings (``lock_timeout``, ``statement_timeout``) apply to every connection
    the tool makes, through libpq's ``options``.
    """
    from django.conf import settings
    from django.db import connections

    entry = settings.DATABASES[alias]
    original = _original_options.setdefault(alias, dict(entry.get("OPTIONS") or {}))
    entry.update(server.django_settings(name))
    options = dict(original) if keep_options else {}
    if not keep_options and "options" in original:
        # Connection options of the project's own server (service files, certificates) do
        # not apply to a server we provided; search_path-style options still do.
        options["options"] = original["options"]
    options.update(server.options)
    flags = " ".join(f"-c {key}={value}" for key, value in (session or {}).items())
    if flags:
        options["options"] = f"{options.get('options', '')} {flags}".strip()
    entry["OPTIONS"] = options
    connections[alias].close()


def alias_server(project: Project, alias: str) -> Server:
    """The server of the project's ``DATABASES[alias]``, as ``manage.py test`` would use."""
    entry = project.databases[alias]
    options = dict(entry.get("OPTIONS") or {})
    host = str(entry.get("HOST") or options.pop("host", "") or "")
    if not host:
        # libpq's default: the unix socket; Django passes no host in that case.
        host = os.environ.get("PGHOST", "/var/run/postgresql")
    port_text = str(entry.get("PORT") or os.environ.get("PGPORT") or "5432")
    try:
        port = int(port_text)
    except ValueError:
        raise FatalError(
            f"{project.settings_module}: DATABASES[{alias!r}]['PORT'] is {port_text!r}, "
            "not a number."
        ) from None
    libpq = {
        k: str(v)
        for k, v in options.items()
        if k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "passfile", "service")
    }
    return Server(
        host=host,
        port=port,
        user=str(entry.get("USER") or os.environ.get("PGUSER") or "postgres"),
        password=str(entry.get("PASSWORD") or ""),
        options=libpq,
    )


def base_settings(alias: str = "default") -> dict[str, Any]:
    """What shapes the SQL migrations produce on ``alias``, or how its base is built: part of
    the base cache's key (:func:`guard.database.cache.key`). The routers' code is in it, since
    they decide which operations run on the alias."""
    from django.conf import settings

    entry = settings.DATABASES[alias]
    return {
        "alias": alias,
        "engine": entry.get("ENGINE"),
        "options": original_options(alias).get("options"),
        "routers": _routers(),
        "installed_apps": list(settings.INSTALLED_APPS),
        "migration_modules": getattr(settings, "MIGRATION_MODULES", {}),
        "use_tz": getattr(settings, "USE_TZ", None),
        "default_auto_field": getattr(settings, "DEFAULT_AUTO_FIELD", None),
    }


def _routers() -> list[str]:
    """Each router as ``module.Class`` and a digest of its module's source."""
    import hashlib

    from django.db import router

    found = []
    for instance in router.routers:
        kind = type(instance)
        module = sys.modules.get(kind.__module__)
        filename = getattr(module, "__file__", None)
        try:
            digest = hashlib.sha256(Path(filename).read_bytes()).hexdigest() if filename else ""
        except OSError:
            digest = "unreadable"
        found.append(f"{kind.__module__}.{kind.__qualname__}:{digest}")
    return found
