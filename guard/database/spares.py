"""Spare clones of the cached bases, made after a run's verdict, for the next run to take at once.

Cloning a template (``CREATE DATABASE ... TEMPLATE``) is most of what a warm run waits for on the
server: 0.1-0.8 s for the 10-30 MB base of a real project, where Django's start-up costs about as
much. So once a run's verdict is out, a spare clone of the template it used is made for the
next run (by :mod:`guard.execution.handoff`, in a process of its own), and the next run takes it
by renaming it to its own name, which costs a millisecond.

A spare of ``migration_guard_cache_<key>`` is ``migration_guard_spare_<key>_<random>``: it
holds exactly what its template holds (templates never change, and nobody connects to a spare),
and its comment keeps what the run that made it read of it (the schema and the rows), so that the
run that takes it need not read them again. It is made under a name of the maker's
(``migration_guard_build_<host>_<pid>_...``, swept if the maker dies) and renamed once complete.
At most :data:`KEEP` templates have a spare (the last used, say the bases of two branches a
developer goes between); the others' are dropped, and a template's go with it when it is
evicted or cleaned.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from guard.database import throwaway
from guard.database.server import Server, connect_maintenance, driver_errors, quote_ident
from guard.errors import FatalError

PREFIX = f"{throwaway.PREFIX}spare_"
CACHE_PREFIX = f"{throwaway.PREFIX}cache_"
KEEP = 2
"""How many templates keep a spare."""
FORMAT = 1
"""Bumped when what a spare's comment keeps changes: an older spare is then only a clone."""


def _key(template: str) -> str:
    if not template.startswith(CACHE_PREFIX):
        raise ValueError(f"not a cached base: {template!r}")
    return template[len(CACHE_PREFIX):]


def _pattern(template: str | None = None) -> str:
    """A LIKE pattern for the spares of ``template`` (of any, with None)."""
    stem = PREFIX + (f"{_key(template)}_" if template else "")
    return stem.replace("_", "\\_") + "%"


def _spares(cur: Any, template: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The spares (of ``template``), each with what its comment keeps, oldest first."""
    cur.execute("SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname LIKE %s", (_pattern(template),))
    found = []
    for name, comment in cur.fetchall():
        try:
            kept = json.loads(comment) if comment else {}
        except ValueError:
            kept = {}
        found.append((str(name), kept if isinstance(kept, dict) else {}))
    return sorted(found, key=lambda item: float(item[1].get("made", 0) or 0))


def take(server: Server, template: str, name: str) -> dict[str, Any] | None:
    """Rename a spare of ``template`` to ``name``: what its comment keeps (``{}`` for a spare
    of another format), or None when there is none to take (a concurrent run took it)."""
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        for spare, kept in reversed(_spares(cur, template)):
            throwaway.check_ours(name)
            try:
                cur.execute(f"ALTER DATABASE {quote_ident(spare)} RENAME TO {quote_ident(name)}")
            except driver_errors():
                continue  # taken meanwhile, or still being read by its maker
            return kept if kept.get("format") == FORMAT else {}
        return None
    finally:
        conn.close()


def make(server: Server, template: str, read: Callable[[str], dict[str, Any]]) -> str | None:
    """A spare of ``template``, unless it has one (or another process is making one): its
    name, or None. ``read(name)`` says what to keep in its comment; then the spares of the
    least recently used templates beyond :data:`KEEP` are dropped."""
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (PREFIX + template,))
        if not cur.fetchone()[0]:
            return None
        try:
            if _spares(cur, template) or not _exists(cur, template):
                return None
            building = throwaway.new_name("build")
            try:
                throwaway.create_database(server, building, template=template)
            except FatalError:
                if not _exists(cur, template):  # evicted meanwhile by another run: no spare
                    return None
                raise
            try:
                kept = {**read(building), "format": FORMAT, "template": template,
                        "made": time.time()}
                _wait_for_no_sessions(cur, building)
                cur.execute(f"COMMENT ON DATABASE {quote_ident(building)} IS %s",
                            (json.dumps(kept),))
                spare = f"{PREFIX}{_key(template)}_{secrets.token_hex(4)}"
                cur.execute(f"ALTER DATABASE {quote_ident(building)} RENAME TO "
                            f"{quote_ident(spare)}")
            except BaseException:
                throwaway.drop_database(server, building)
                raise
            _trim(server, cur)
            return spare
        finally:
            cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (PREFIX + template,))
    finally:
        conn.close()


def _wait_for_no_sessions(cur: Any, name: str, timeout: float = 10.0) -> None:
    """Until the sessions on ``name`` have ended (a closed connection's server process may
    still be leaving, and a database with a session cannot be renamed)."""
    deadline = time.monotonic() + timeout
    while True:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,))
        if not cur.fetchone()[0] or time.monotonic() > deadline:
            return
        time.sleep(0.005)


def _exists(cur: Any, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    return cur.fetchone() is not None


def _trim(server: Server, cur: Any) -> None:
    """Keep the spares of the :data:`KEEP` templates whose spares were made last."""
    by_template: dict[str, list[str]] = {}
    for name, kept in reversed(_spares(cur)):
        by_template.setdefault(str(kept.get("template", name)), []).append(name)
    for names in list(by_template.values())[KEEP:]:
        for name in names:
            throwaway.drop_database(server, name)


def drop_for(server: Server, template: str) -> list[str]:
    """Drop the spares of ``template`` (it is being evicted)."""
    conn = connect_maintenance(server)
    try:
        names = [name for name, _ in _spares(conn.cursor(), template)]
    finally:
        conn.close()
    for name in names:
        throwaway.drop_database(server, name)
    return names


def drop_all(server: Server) -> list[str]:
    """Drop every spare on ``server`` (``migration-guard clean``)."""
    conn = connect_maintenance(server)
    try:
        names = [name for name, _ in _spares(conn.cursor())]
    finally:
        conn.close()
    for name in names:
        throwaway.drop_database(server, name)
    return names
