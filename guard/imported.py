"""The migration graph, loaded as a new database sees it; with a database to answer the
migration modules that query one when they are imported.

Django imports every migration module to build the graph. A module that runs a query then
(taiga-back's ``projects.0046`` reads the server's version to pick its SQL) fails with every
alias pointed at a database that does not exist yet. Then the server is provided before the
graph is loaded again, and an empty database of the run's made on it, as ``manage.py migrate``
on a new database would answer the query; it is dropped when the run ends. The common case
pays nothing for this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from guard import project, timings
from guard.config import CheckOptions
from guard.database import throwaway
from guard.database.providers import Provided, provide
from guard.planning.graph import QueriesWhenImported, load_graph
from guard.types import MigrationKey

if TYPE_CHECKING:
    from django.db.migrations.loader import MigrationLoader


@contextlib.contextmanager
def provide_server(proj: project.Project, options: CheckOptions, first: str) -> Iterator[Provided]:
    """The server of ``--db`` (``first``: the alias whose settings name the server of ``--db
    settings``), timed as the run's ``server`` phase."""
    started = timings.RUN.now()
    with provide(
        options.db, project.alias_server(proj, first), docker_image=options.docker_image,
        bindir=options.pg_bindir,
    ) as provided:
        timings.add("server", timings.RUN.now() - started, started=started,
                    detail=provided.provider)
        yield provided


def load(proj: project.Project, loaded: MigrationLoader | None, options: CheckOptions,
         deleted: dict[MigrationKey, Path], early: contextlib.ExitStack, first: str
         ) -> tuple[MigrationLoader, Provided | None]:
    """The graph; where a migration module queries the database when it is imported, loaded
    with every alias pointed at an empty database of the run's on the server provided for it
    (as ``manage.py migrate`` on a new database answers it), which goes when the run ends."""
    if loaded is not None:
        return loaded, None
    try:
        return load_graph(deleted), None
    except QueriesWhenImported:
        pass
    from django.db import connections

    provided = early.enter_context(provide_server(proj, options, first))
    name = throwaway.new_name()
    with timings.phase("database", "an empty one, for the migrations that query it when "
                       "imported"):
        throwaway.create_database(provided.server, name)
    early.callback(throwaway.drop_database, provided.server, name)
    early.callback(connections.close_all)
    for alias in proj.databases:
        project.point(alias, provided.server, name, keep_options=provided.keep_options)
    with timings.phase("graph", "loaded again, with an empty database"):
        loader = load_graph(deleted, with_database=True)
    connections.close_all()
    return loader, provided
