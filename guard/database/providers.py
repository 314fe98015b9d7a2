"""Where the PostgreSQL server of a run comes from: ``--db URL|settings|local|docker|auto``.

:func:`provide` picks a server and keeps whatever it started running until the run ends: a URL
as given, the project's settings server, the warm local cluster (:mod:`guard.database.warm`), a
throwaway cluster (:mod:`guard.database.cluster`) or a Docker container
(:mod:`guard.database.container`). ``auto`` tries them in that order and says why it skipped
each one it did not take.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from guard.database.server import Server, connect_maintenance, one_line, parse_url
from guard.errors import FatalError


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


def can_create_databases(server: Server) -> str:
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
    (:class:`guard.database.warm.WarmCluster`: its databases outlive the run, the server does not,
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
        why_not = can_create_databases(settings_server)
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
            why_not = can_create_databases(settings_server)
            if not why_not:
                yield Provided(
                    settings_server, "settings",
                    f"DATABASES['default'] server {settings_server.describe()} answered "
                    "and allows CREATE DATABASE",
                    keep_options=True,
                )
                return
            skipped.append(f"the settings' server {settings_server.describe()}: {why_not}")
    if spec in ("auto", "local"):
        # What starts a server of our own is imported only where one is asked for.
        from guard.database import binaries, cluster
        from guard.database import warm as warm_clusters

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
    from guard.database import container

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
