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
import time
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
    """Whether process ``pid`` runs (a zombie does not: a killed process whose parent is gone
    stays one where nothing reaps it, as in a container without an init)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def sweep(server: Server) -> list[str]:
    """Drop the run, build and restore databases that runs on this machine left when they
    died (and those a run's handoff process left, named after it).

    Only names with this machine's tag and the id of a process that no longer exists; cached
    states are kept. A run killed with SIGKILL cannot clean up after itself: the next one does.
    """
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                    (f"{PREFIX}%\\_{host_tag()}\\_%",))
        names = [str(row[0]) for row in cur.fetchall()]
    finally:
        conn.close()
    dead = []
    for name in names:
        parts = name.split("_")  # migration guard <purpose> <host> <pid> <random>
        try:
            if len(parts) != 6 or parts[3] != host_tag():
                continue
            pid = int(parts[4])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            drop_database(server, name)
            dead.append(name)
    return dead

def hand_to(server: Server, name: str, pid: int, *, timeout: float = 0.5) -> str:
    """Rename our database ``name`` to the same name with ``pid`` as its owner (the process
    that will drop it), once the sessions on it have ended; its name now (the old one if they
    did not end in time)."""
    check_ours(name)
    parts = name.split("_")
    try:
        int(parts[-2])
    except (IndexError, ValueError):
        return name
    renamed = "_".join([*parts[:-2], str(pid), parts[-1]])
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        deadline = time.monotonic() + timeout
        while True:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,))
            if not cur.fetchone()[0]:
                break
            if time.monotonic() > deadline:
                return name
            time.sleep(0.002)
        try:
            cur.execute(f"ALTER DATABASE {quote_ident(name)} RENAME TO {quote_ident(renamed)}")
        except driver_errors():
            return name
        return renamed
    finally:
        conn.close()


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
