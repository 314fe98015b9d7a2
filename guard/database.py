"""Where PostgreSQL comes from, and the throwaway databases migration-guard creates on it.

A :class:`Server` is only an address. :func:`provide` picks one from ``--db`` (a URL,
``settings``, ``local``, ``docker`` or ``auto``) and keeps whatever it started running until the
run ends. :func:`throwaway_database` creates a database named ``migration_guard_...`` on it and
drops it afterwards; nothing else is ever created, altered or dropped.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from guard.errors import FatalError

PREFIX = "migration_guard_"
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
        conn: Any = psycopg.connect(**params, autocommit=True)
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


def check_ours(name: str) -> None:
    """Refuse to touch a database that migration-guard did not name."""
    if not name.startswith(PREFIX):
        raise RuntimeError(f"refusing to drop {name!r}: not a migration-guard database")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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


@dataclass(frozen=True)
class Provided:
    """The server a run uses, and one line on how it was chosen."""

    server: Server
    provider: str
    """``url``, ``settings``, ``local`` or ``docker``."""
    reason: str
    keep_options: bool = False
    """True when the project's own connection OPTIONS apply (its own server)."""


URL_ENV = "MIGRATION_GUARD_DATABASE_URL"
PROVIDERS = ("auto", "settings", "local", "docker")


def _can_create_databases(server: Server) -> str:
    """Empty if we may create databases there, else why not."""
    try:
        conn = connect_maintenance(server)
    except FatalError as exc:
        return one_line(exc.__cause__) if exc.__cause__ is not None else str(exc)
    try:
        cur = conn.cursor()
        cur.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cur.fetchone()
        return "" if row and row[0] else f"user {server.user!r} may not create databases"
    finally:
        conn.close()


@contextlib.contextmanager
def provide(
    spec: str,
    settings_server: Server | None,
    *,
    scratch_dir: str | None = None,
    docker_image: str = "postgres:15",
    warm: bool = True,
    bindir: str | None = None,
) -> Iterator[Provided]:
    """The server for ``--db spec``; whatever this starts is stopped when the block ends.

    The ``local`` provider uses the warm cluster kept in the cache folder
    (:class:`guard.warm.WarmCluster`: its databases outlive the run, the server does not,
    unless another run still uses it); with ``warm=False``, a throwaway cluster in a new folder
    under ``scratch_dir`` (default: the temporary folder) instead, removed afterwards.
    ``bindir`` (the ``pg_bindir`` setting) is the only folder of PostgreSQL binaries it then
    uses: a wrong one is reported, never replaced by binaries found elsewhere.
    """
    if spec not in PROVIDERS:
        server = parse_url(spec)
        yield Provided(server, "url", f"--db URL, server {server.describe()}")
        return
    if spec == "auto" and os.environ.get(URL_ENV):
        server = parse_url(os.environ[URL_ENV])
        yield Provided(server, "url", f"{URL_ENV}, server {server.describe()}")
        return
    if spec == "settings":
        if settings_server is None:
            raise FatalError("--db settings: the project's settings name no database server.")
        why_not = _can_create_databases(settings_server)
        if why_not:
            raise FatalError(
                f"--db settings: cannot use the server of DATABASES['default'] "
                f"({settings_server.describe()}): {why_not}. Start it, grant CREATEDB, or pick "
                "another with --db local / --db URL."
            )
        yield Provided(settings_server, "settings",
                       f"DATABASES['default'] server {settings_server.describe()} (--db settings)",
                       keep_options=True)
        return
    skipped: list[str] = []
    if spec == "auto" and settings_server is not None:
        if not settings_server.is_local:
            skipped.append(
                f"the settings' server {settings_server.describe()} is not on this machine "
                "(use --db settings or a URL to allow it)"
            )
        else:
            why_not = _can_create_databases(settings_server)
            if not why_not:
                yield Provided(
                    settings_server, "settings",
                    f"DATABASES['default'] server {settings_server.describe()} answered "
                    "and allows CREATE DATABASE",
                    keep_options=True,
                )
                return
            skipped.append(f"the settings' server {settings_server.describe()}: {why_not}")
    from guard import binaries, cluster, container
    from guard import warm as warm_clusters

    if spec in ("auto", "local"):
        found = binaries.find_binaries(bindir) if bindir is not None else binaries.find_binaries()
        if bindir is not None and found is None:
            raise FatalError(
                f"--db {spec}: pg_bindir = {bindir!r} in [tool.migration-guard], but {bindir} "
                "does not hold the PostgreSQL server programs initdb, pg_ctl and postgres. "
                "Point pg_bindir at the bin folder of a PostgreSQL installation (e.g. "
                "/usr/lib/postgresql/15/bin), or remove it to let migration-guard search."
            )
        if found is not None and warm and warm_clusters.warm_supported():
            with warm_clusters.WarmCluster(bindir=found) as kept:
                why = f"local cluster from {found} in {kept.data_dir} ({kept.state})"
                if skipped:
                    why += f" ({'; '.join(skipped)})"
                yield Provided(kept.server, "local", why)
            return
        if found is not None:
            import shutil
            import tempfile

            base = tempfile.mkdtemp(prefix="migration-guard-", dir=scratch_dir)
            try:
                with cluster.LocalCluster.start(Path(base), bindir=found) as local:
                    why = f"throwaway cluster from {found}"
                    if skipped:
                        why += f" ({'; '.join(skipped)})"
                    yield Provided(local.server, "local", why)
            finally:
                shutil.rmtree(base, ignore_errors=True)
            return
        if spec == "local":
            raise FatalError(
                "--db local: no PostgreSQL server binaries (initdb, pg_ctl, postgres) found in "
                "PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin, Homebrew or Postgres.app. "
                "Install PostgreSQL, or `pip install \"migration-guard[embedded]\"`."
            )
        skipped.append("no local PostgreSQL binaries")
    if container.docker_available():
        with container.DockerPostgres.start(image=docker_image) as docker:
            why = f"docker container of {docker_image}"
            if skipped:
                why += f" ({'; '.join(skipped)})"
            yield Provided(docker.server, "docker", why)
        return
    if spec == "docker":
        raise FatalError(
            "--db docker: the `docker` command is missing or no Docker engine answers "
            "(`docker info` failed). Start Docker, or use --db local / --db URL."
        )
    skipped.append("no Docker engine")
    raise FatalError(
        "No PostgreSQL server to test on: " + "; ".join(skipped) + ". Pass --db URL "
        f"(or set {URL_ENV}), install PostgreSQL, or `pip install \"migration-guard[embedded]\"`."
    )
