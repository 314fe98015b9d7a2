"""Cached base states: every migration outside the selection, applied once, kept as a template.

A run's base (the migrations outside its selection, applied from an empty database) depends only
on those migrations' code, the code they import from the project, the Django version, the
PostgreSQL server version and the settings that shape the SQL. That is the cache key. The first
run with a key builds the base in a database of its own and renames it to
``migration_guard_cache_<key>`` once it is complete, under an advisory lock, so that a
concurrent run waits instead of building it twice and never clones a half-built one. Later runs
clone it with ``CREATE DATABASE ... TEMPLATE`` instead of replaying history. The least recently
used caches beyond the configured number are dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guard.database import spares, throwaway
from guard.database.server import Server, connect_maintenance, driver_errors, quote_ident
from guard.planning import semantic
from guard.planning.graph import migration_file
from guard.types import MigrationKey, label

if TYPE_CHECKING:
    from django.db.migrations.loader import MigrationLoader

CACHE_PREFIX = f"{throwaway.PREFIX}cache_"
DEFAULT_SIZE = 5
FORMAT = 2
"""Bumped when what a cached database holds changes, so old caches are never reused."""


_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import[ \t]+\(?([\w, \t]+)|import[ \t]+([\w., \t]+))",
    re.MULTILINE,
)


def _project_modules(project_dir: Path) -> dict[str, str]:
    """Imported modules whose file is in the project folder, by name."""
    roots = tuple({str(project_dir) + os.sep, os.path.realpath(project_dir) + os.sep})
    found = {}
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if isinstance(filename, str) and filename.startswith(roots):
            found[name] = filename
    return found


def _imported_project_files(source: bytes, modules: dict[str, str]) -> list[str]:
    """The project's own modules a migration imports (one level: what is practical).

    A regular expression over the source, not a parse: this runs for every migration of the
    base on every run, and the modules are already imported, so only their names are needed.
    """
    names: list[str] = []
    for module, members, plain in _IMPORT.findall(source):
        if module:
            base = module.decode()
            names.append(base)
            names.extend(f"{base}.{m.strip()}" for m in members.decode().split(",") if m.strip())
        else:
            names.extend(n.strip().split(" ")[0] for n in plain.decode().split(",") if n.strip())
    return sorted({modules[name] for name in names if name in modules})


def environment(*, server_version: str, settings: dict[str, Any]) -> str:
    """The part of a base's key that is not its migrations: our format, Django's and the
    server's versions and the settings that shape it on one alias."""
    import django

    return hashlib.sha256(json.dumps(
        {"format": FORMAT, "django": django.get_version(), "server": server_version,
         "settings": settings},
        sort_keys=True, default=str,
    ).encode()).hexdigest()[:24]


def key(*, sources: str, environment: str) -> str:
    """The cache key of a base: its code (:func:`sources_digest`) in its environment."""
    return hashlib.sha256(f"{sources}:{environment}".encode()).hexdigest()[:24]


def migration_digests(loader: MigrationLoader, base: Sequence[MigrationKey], *,
                      project_dir: Path, meaning: bool = False) -> dict[str, str]:
    """Each base migration's digest, by label, in the base's order: its file and the project
    code it imports. Read once per run; the same on every alias.

    With ``meaning``, the file's digest is that of what it means (:mod:`guard.planning.
    semantic`: comments, formatting, docstrings do not count), so that a base built before a
    formatter ran over the migrations still counts as theirs; the project code it imports still
    counts byte for byte. Parsing every file costs ~0.5 ms each: only done when no template has
    the exact key."""
    modules = _project_modules(project_dir)
    read: dict[str, bytes] = {}

    def content(path: str) -> bytes:
        if path not in read:
            try:
                read[path] = Path(path).read_bytes()
            except OSError:
                read[path] = b"missing:" + path.encode()
        return read[path]

    digests = {}
    for node in base:
        digest = hashlib.sha256(label(node).encode() + b"\0")
        filename = migration_file(loader.graph.nodes[node])
        if filename:
            source = content(filename)
            digest.update(_meaning(source) if meaning else source)
            for part in _imported_project_files(source, modules):
                digest.update(b"\0" + content(part))
        digests[label(node)] = digest.hexdigest()[:20]
    return digests


def _meaning(source: bytes) -> bytes:
    try:
        return semantic.normalised_dump(source.decode("utf-8")).encode()
    except (SyntaxError, ValueError, RecursionError):  # then only the same bytes are the same
        return source


def sources_digest(digests: Mapping[str, str]) -> str:
    """The digest of a whole base, from :func:`migration_digests`."""
    return hashlib.sha256(
        "\n".join(f"{name} {digest}" for name, digest in digests.items()).encode()
    ).hexdigest()


def server_version(server: Server) -> str:
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute("SHOW server_version")
        row = cur.fetchone()
        return str(row[0]) if row else "?"
    finally:
        conn.close()


def exists(cur: Any, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    return cur.fetchone() is not None


def comment(cur: Any, name: str) -> dict[str, Any]:
    """What the comment of the template ``name`` keeps (read on ``cur``)."""
    cur.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = %s", (name,))
    row = cur.fetchone()
    try:
        found = json.loads(row[0]) if row and row[0] else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def touch(cur: Any, name: str, **extra: Any) -> bool:
    """Stamp the cache as used now (keeping what else its comment holds); False when it is gone
    (a concurrent run evicted it, or ``clean`` dropped it, since it was seen)."""
    stamp = {**comment(cur, name), **extra, "last_used": time.time(), "pid": os.getpid()}
    try:
        # On a database that no longer exists PostgreSQL only warns; on one dropped while the
        # comment is written it raises invalid_catalog_name.
        cur.execute(f"COMMENT ON DATABASE {quote_ident(name)} IS %s", (json.dumps(stamp),))
    except driver_errors() as exc:
        if getattr(exc, "pgcode", None) == "3D000" or "does not exist" in str(exc):
            return False
        raise
    return exists(cur, name)


def annotate(server: Server, name: str, **extra: Any) -> None:
    """Keep ``extra`` (JSON) with the cache ``name``: what the run that built it learnt."""
    conn = connect_maintenance(server)
    try:
        touch(conn.cursor(), name, **extra)
    finally:
        conn.close()


def annotation(server: Server, name: str) -> dict[str, Any]:
    """What :func:`annotate` kept with the cache ``name``."""
    conn = connect_maintenance(server)
    try:
        return comment(conn.cursor(), name)
    finally:
        conn.close()


def entries(server: Server) -> list[tuple[str, float, dict[str, Any]]]:
    """The cache databases on ``server`` with what their comments keep, least recently used
    first."""
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname LIKE %s",
            (CACHE_PREFIX.replace("_", "\\_") + "%",),
        )
        found = []
        for name, comment in cur.fetchall():
            try:
                kept = json.loads(comment or "{}")
                kept = kept if isinstance(kept, dict) else {}
                used = float(kept.get("last_used", 0.0))
            except (ValueError, TypeError):
                kept, used = {}, 0.0
            found.append((str(name), used, kept))
        return sorted(found, key=lambda item: item[1])
    finally:
        conn.close()


def cached(server: Server) -> list[tuple[str, float]]:
    """The cache databases on ``server``, least recently used first."""
    return [(name, used) for name, used, _ in entries(server)]


def evict(server: Server, keep: int, *, protect: Collection[str] = ()) -> list[str]:
    """Drop the least recently used caches beyond ``keep`` of each stage (the bases the runs
    clone, and the rows-free bases they grow from); never those in ``protect``."""
    stages: dict[str, list[str]] = {}
    for name, _, kept in entries(server):
        stages.setdefault(str(kept.get("stage", "")), []).append(name)
    dropped = []
    for names in stages.values():
        excess = len(names) - keep
        for name in names:
            if excess <= 0:
                break
            if name not in protect:
                throwaway.drop_database(server, name)
                dropped.append(name)
                dropped.extend(spares.drop_for(server, name))
                excess -= 1
    return dropped


def drop_all(server: Server) -> list[str]:
    """Drop every cached base on ``server``, and their spare clones."""
    names = [name for name, _ in cached(server)]
    for name in names:
        throwaway.drop_database(server, name)
    return names + spares.drop_all(server)


@contextmanager
def advisory_lock(server: Server, name: str) -> Iterator[Any]:
    """Hold a session advisory lock named after the cache while the block runs."""
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
        try:
            yield cur
        finally:
            cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
    finally:
        conn.close()
