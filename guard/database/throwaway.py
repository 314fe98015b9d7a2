"""The throwaway databases migration-guard creates, and the sweep of those dead runs left.

Every database the tool creates is named ``migration_guard_<purpose>_<host>_<pid>_<random>``
(:func:`new_name`): whose it is, and a fresh part. :func:`throwaway_database` creates one and
drops it when the block ends; :func:`check_ours` refuses to create or drop any other name, so
nothing of the user's is ever touched. :func:`sweep` drops what runs on this machine left behind
when they were killed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

from guard.database.server import Server, connect_maintenance, driver_errors, one_line, quote_ident
from guard.errors import FatalError

PREFIX = "migration_guard_"


def host_tag() -> str:
    """Six hex digits naming this machine, so that a sweep never takes another machine's
    (or container's) run for a dead one of ours."""
    import hashlib
    import socket

    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def new_name(purpose: str = "run") -> str:
    """``migration_guard_<purpose>_<host>_<pid>_<random>``: whose it is, and a fresh part."""
    return f"{PREFIX}{purpose}_{host_tag()}_{os.getpid()}_{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(server: Server) -> list[str]:
    """Drop the run and build databases that runs on this machine left when they died.

    Only names with this machine's tag and the id of a process that no longer exists; cached
    states are kept. A run killed with SIGKILL cannot clean up after itself: the next one does.
    """
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s OR datname LIKE %s",
            (f"{PREFIX}run\\_{host_tag()}\\_%", f"{PREFIX}build\\_{host_tag()}\\_%"),
        )
        names = [str(row[0]) for row in cur.fetchall()]
    finally:
        conn.close()
    dead = []
    for name in names:
        try:
            pid = int(name.split("_")[-2])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            drop_database(server, name)
            dead.append(name)
    return dead

def check_ours(name: str) -> None:
    """Refuse to touch a database that migration-guard did not name."""
    if not name.startswith(PREFIX):
        raise RuntimeError(f"refusing to drop {name!r}: not a migration-guard database")

def create_database(server: Server, name: str, *, template: str | None = None) -> None:
    check_ours(name)
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        sql = f"CREATE DATABASE {quote_ident(name)}"
        if template is not None:
            sql += f" TEMPLATE {quote_ident(template)}"
        try:
            cur.execute(sql)
        except driver_errors() as exc:
            raise FatalError(
                f"Cannot create the throwaway database {name} on {server.describe()}: "
                f"{one_line(exc)}. The user needs the CREATEDB privilege "
                "(ALTER ROLE ... CREATEDB), or pick another server with --db."
            ) from exc
    finally:
        conn.close()


def drop_database(server: Server, name: str) -> None:
    """Drop one of our databases, ending any connection to it first."""
    check_ours(name)
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
    finally:
        conn.close()


@contextlib.contextmanager
def throwaway_database(server: Server, purpose: str = "run") -> Iterator[str]:
    """Create ``migration_guard_<purpose>_<pid>_<random>`` and drop it when the block ends."""
    name = new_name(purpose)
    create_database(server, name)
    try:
        yield name
    finally:
        drop_database(server, name)
