"""``migration-guard clean``: drop every cached base state and remove the warm local cluster.

Caches live on each server runs used: the one given by ``--db`` (or
``MIGRATION_GUARD_DATABASE_URL``), the project's settings server when it is on this machine, and
the warm local cluster, which is removed whole. Databases of runs that died (their process is
gone) are dropped too, on servers on this machine.
"""

from __future__ import annotations

import os

from guard import project
from guard.config import CheckOptions
from guard.database import cache, throwaway
from guard.database.aliases import is_postgres
from guard.database.cachedir import remove_warm_clusters
from guard.database.providers import PROVIDERS, URL_ENV
from guard.database.server import Server, parse_url
from guard.errors import FatalError


def _settings_servers(options: CheckOptions) -> list[tuple[str, Server]]:
    """The servers of the project's PostgreSQL aliases (alias, server), each server once, if
    there is a project here whose settings import."""
    try:
        proj = project.load(options, throwaway.new_name())
    except FatalError:
        return []
    found: dict[str, tuple[str, Server]] = {}
    for alias, entry in proj.databases.items():
        if is_postgres(str(entry.get("ENGINE") or "")) and not (entry.get("TEST") or {}).get(
            "MIRROR"
        ):
            server = project.alias_server(proj, alias)
            found.setdefault(server.describe(), (alias, server))
    return list(found.values())


def clean(options: CheckOptions) -> int:
    servers: list[tuple[Server, str]] = []
    spec = options.db
    if spec not in PROVIDERS:
        servers.append((parse_url(spec), "--db"))
    elif os.environ.get(URL_ENV):
        servers.append((parse_url(os.environ[URL_ENV]), URL_ENV))
    if spec in ("auto", "settings"):
        for alias, found in _settings_servers(options):
            if found.is_local or spec == "settings":
                servers.append((found, f"the server of DATABASES[{alias!r}]"))
    for server, how in servers:
        try:
            dropped = cache.drop_all(server)
            if server.is_local:
                dropped.extend(throwaway.sweep(server))
        except FatalError as exc:
            print(f"migration-guard: skipped {server.describe()} ({how}): {exc}")
            continue
        print(f"migration-guard: {server.describe()} ({how}): dropped {len(dropped)} "
              f"database(s){': ' + ', '.join(dropped) if dropped else ''}")
    if spec in ("auto", "local"):
        for folder in remove_warm_clusters():
            print(f"migration-guard: removed the local cluster {folder}")
    return 0
