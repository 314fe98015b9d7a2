"""How to reach a PostgreSQL server, and the connections migration-guard opens to it.

A :class:`Server` is only an address (a host name, an address or a unix-socket folder, with the
user and libpq options). :func:`connect` opens an autocommit connection through psycopg2, or
psycopg 3 where that is what the project's interpreter has; :func:`make_interruptible` lets
Ctrl-C stop a running statement. This is the vocabulary every other module of the database part,
and the execution part, builds on: it imports nothing of theirs.
"""

from __future__ import annotations

import contextlib
import ipaddress
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from guard.errors import FatalError

MAINTENANCE_DATABASES = ("postgres", "template1")


class Cursor(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...
    def close(self) -> Any: ...


class Connection(Protocol):
    def cursor(self) -> Any: ...
    def close(self) -> Any: ...


@dataclass(frozen=True)
class Server:
    """How to reach a PostgreSQL server: host is a name, an address or a unix-socket folder."""

    host: str
    port: int = 5432
    user: str = "postgres"
    password: str = field(default="", repr=False)
    options: Mapping[str, str] = field(default_factory=dict)
    """libpq connection options such as ``sslmode``."""

    def params(self, dbname: str) -> dict[str, Any]:
        """Keyword arguments for ``psycopg2.connect`` / ``psycopg.connect``."""
        params: dict[str, Any] = {"dbname": dbname, "host": self.host, "port": self.port}
        if self.user:
            params["user"] = self.user
        if self.password:
            params["password"] = self.password
        params.update(self.options)
        return params

    def django_settings(self, dbname: str) -> dict[str, Any]:
        """The ``HOST``/``PORT``/``USER``/``PASSWORD``/``NAME`` part of a ``DATABASES`` entry."""
        return {
            "NAME": dbname,
            "HOST": self.host,
            "PORT": str(self.port),
            "USER": self.user,
            "PASSWORD": self.password,
        }

    @property
    def is_local(self) -> bool:
        """True for a unix socket or a loopback address: a server on this machine."""
        if not self.host or self.host.startswith("/") or self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def describe(self) -> str:
        where = self.host if self.host.startswith("/") else f"{self.host}:{self.port}"
        return f"{self.user}@{where}" if self.user else where


def parse_url(url: str) -> Server:
    """A ``postgres://user:password@host:port/dbname?sslmode=...`` URL as a :class:`Server`."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("postgres", "postgresql", "pgsql"):
        raise FatalError(
            f"The database URL {redact(url)!r} is not a PostgreSQL URL: it must start with "
            "postgres:// or postgresql://, e.g. postgres://postgres@127.0.0.1:5432/postgres."
        )
    query = dict(urllib.parse.parse_qsl(parsed.query))
    try:
        port = parsed.port or int(query.pop("port", "5432"))
    except ValueError:
        raise FatalError(
            f"The database URL {redact(url)!r} has a port that is not a number."
        ) from None
    host = urllib.parse.unquote(parsed.hostname or "") or query.pop("host", "")
    query.pop("host", None)
    if not host:
        host = "127.0.0.1"
    return Server(
        host=host,
        port=port,
        user=urllib.parse.unquote(parsed.username or "") or "postgres",
        password=urllib.parse.unquote(parsed.password or ""),
        options=query,
    )


def redact(url: str) -> str:
    """The URL with its password replaced, for messages."""
    try:
        parsed = urllib.parse.urlsplit(url)
        password = parsed.password
    except ValueError:
        return "<a URL that cannot be parsed>"
    netloc = parsed.netloc
    if password is not None:
        netloc = netloc.replace(f":{password}@", ":***@", 1)
    query = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        query = [(key, "***" if key == "password" else value) for key, value in query]
    return urllib.parse.urlunsplit(
        parsed._replace(netloc=netloc, query=urllib.parse.urlencode(query, safe="*/"))
    )


def connect(server: Server, dbname: str) -> Connection:
    """An autocommit connection through psycopg2, or psycopg 3 where that is what is installed."""
    params = server.params(dbname)
    params.setdefault("connect_timeout", 10)
    try:
        import psycopg2
    except ImportError:
        try:
            import psycopg
        except ImportError:
            raise FatalError(
                "No PostgreSQL driver is installed in this interpreter: install psycopg2-binary "
                "(or psycopg) next to Django."
            ) from None
        # Client-side binding, as psycopg2 does it: the server cannot bind parameters in
        # utility statements (COMMENT ON DATABASE ... IS %s).
        conn: Any = psycopg.connect(**params, autocommit=True,
                                    cursor_factory=psycopg.ClientCursor)
        return conn  # type: ignore[no-any-return]
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    return conn  # type: ignore[no-any-return]


def make_interruptible() -> None:
    """Let Ctrl-C and SIGTERM stop a running statement (psycopg2 otherwise waits it out).

    psycopg2's documented way is a wait callback, which turns its blocking calls into a
    select() loop in Python where a signal's exception can be raised. Unlike psycopg2's own
    ``wait_select``, this one cancels the statement and then re-raises the interrupt instead of
    turning it into a "canceling statement" error. psycopg 3 does this by itself.
    """
    with contextlib.suppress(ImportError):
        import psycopg2.extensions

        psycopg2.extensions.set_wait_callback(_wait_interruptibly)


def _wait_interruptibly(conn: Any) -> None:
    import select

    import psycopg2.extensions as ext

    interrupted: KeyboardInterrupt | None = None
    while True:
        try:
            state = conn.poll()
            if state == ext.POLL_OK:
                break
            if state == ext.POLL_READ:
                select.select([conn.fileno()], [], [])
            elif state == ext.POLL_WRITE:
                select.select([], [conn.fileno()], [])
            else:  # pragma: no cover - psycopg2 documents no other state
                raise conn.OperationalError(f"bad state from poll: {state}")
        except KeyboardInterrupt as exc:
            interrupted = exc
            conn.cancel()  # the server answers with an error, which ends the loop
        except Exception:
            if interrupted is not None:
                raise interrupted from None
            raise
    if interrupted is not None:
        raise interrupted


def driver_errors() -> tuple[type[BaseException], ...]:
    """The driver's base ``Error`` classes, for ``except`` clauses that must not catch bugs."""
    errors: list[type[BaseException]] = []
    with contextlib.suppress(ImportError):
        import psycopg2

        errors.append(psycopg2.Error)
    with contextlib.suppress(ImportError):
        import psycopg

        errors.append(psycopg.Error)
    return tuple(errors)


def connect_maintenance(server: Server) -> Connection:
    """A connection to the server's ``postgres`` (else ``template1``) database."""
    last: BaseException | None = None
    for dbname in MAINTENANCE_DATABASES:
        try:
            return connect(server, dbname)
        except driver_errors() as exc:
            last = exc
            if "does not exist" not in str(exc):
                break
    raise FatalError(
        f"Cannot connect to PostgreSQL at {server.describe()}: {one_line(last)}. Check that the "
        "server runs and the credentials are right, or pick another server with --db."
    ) from last


def one_line(exc: BaseException | None) -> str:
    text = " ".join(str(exc).split()) if exc is not None else "no reason given"
    return text or type(exc).__name__

def answers(server: Server) -> bool:
    """Whether the server takes a connection now (after an error that may mean it died)."""
    quick = Server(server.host, server.port, server.user, server.password,
                   {**server.options, "connect_timeout": "3"})
    try:
        conn = connect(quick, MAINTENANCE_DATABASES[0])
    except Exception:
        return False
    conn.close()
    return True

def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
