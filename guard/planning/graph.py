"""Django's migration graph, read without a database: dependents, the base set and the order.

With D the selected migrations plus everything that depends on them (in any app), the base
B = all nodes - D is closed under dependencies, so it can be applied on its own; D is then run
forward, backward and forward again on top of it.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from guard.errors import FatalError, ProjectError, location
from guard.types import MigrationKey, Selected, label

if TYPE_CHECKING:
    from django.db.migrations import Migration
    from django.db.migrations.graph import MigrationGraph
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState


@dataclass(frozen=True)
class Plan:
    order: tuple[MigrationKey, ...]
    """D, in the order Django applies it from an empty database."""
    selected: tuple[Selected, ...]
    """D again, each with why it is in."""
    base: tuple[MigrationKey, ...]
    """Every other migration, in apply order: the state D starts from."""


def _project_migration(path: Path) -> bool:
    """A module in a migrations folder that is not Django's own."""
    import django

    return path.parent.name == "migrations" and not path.resolve().is_relative_to(
        Path(django.__file__).resolve().parent)


class QueriesWhenImported(FatalError):
    """A migration module ran a query when it was imported, with no database to answer it:
    the run gives it an empty one and loads the graph again (see :mod:`guard.check`)."""


def load_graph(deleted: Mapping[MigrationKey, Path] | None = None, *,
               with_database: bool = False) -> MigrationLoader:
    """Django's loader with no database: the graph as a fresh database sees it.

    ``deleted`` names migrations whose files this change deletes, so that a migration still
    depending on one is reported as that. ``with_database``: every alias points at an empty
    database of the run's (a query at import time gets answered)."""
    from django.db import DatabaseError
    from django.db.migrations.exceptions import BadMigrationError, NodeNotFoundError
    from django.db.migrations.loader import MigrationLoader

    try:
        return MigrationLoader(None, ignore_no_migrations=True)
    except DatabaseError as exc:
        where = location(exc, keep=_project_migration) or "A migration module"
        said = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        if with_database:
            raise FatalError(
                f"{where} queries the database when it is imported, and the query failed "
                f"({said}). migration-guard gave it an empty database on the server it tests "
                "with, as `manage.py migrate` on a new database would: a query that needs "
                "tables or data fails there too. Move it into an operation: a RunPython (its "
                "schema_editor.connection) or a RunSQL, which run on the database being "
                "migrated."
            ) from exc
        raise QueriesWhenImported(
            f"{where} queries the database when it is imported ({said})."
        ) from exc
    except NodeNotFoundError as exc:
        origin = exc.origin
        if origin is None:
            raise ProjectError(f"{exc.message}.") from exc
        filename = migration_file(origin) or label((origin.app_label, origin.name))
        gone = (deleted or {}).get(exc.node)
        if gone is not None:
            raise ProjectError(
                f"{label(exc.node)} ({gone}) is deleted by this change, but "
                f"{origin.app_label}.{origin.name} ({filename}) still depends on it. Restore "
                "it, or replace it with a squashed migration (`python manage.py "
                "squashmigrations`) and keep the files until every database has applied it."
            ) from exc
        raise ProjectError(
            f"{filename}: {origin.app_label}.{origin.name} depends on {label(exc.node)}, "
            "which does not exist. "
            "Fix the dependency, or restore the migration it names "
            "(`python manage.py showmigrations` lists what exists)."
        ) from exc
    except BadMigrationError as exc:
        raise ProjectError(
            f"{exc}. A module in a migrations folder must define a Migration class; "
            "give helper modules a name starting with an underscore."
        ) from exc
    except SyntaxError as exc:
        raise ProjectError(
            f"{exc.filename}:{exc.lineno}: a migration has a syntax error: {exc.msg}. "
            "Fix the file; `python manage.py showmigrations` fails on it too."
        ) from exc
    except ImportError as exc:
        raise ProjectError(
            f"{location(exc)}: a migration failed to import: {type(exc).__name__}: {exc}. "
            "Install what it imports or fix the import."
        ) from exc
    except Exception as exc:
        where = location(exc, keep=_project_migration)
        if not where:  # not raised by a migration module: a bug, said as one
            raise
        raise ProjectError(
            f"{where}: a migration raised {type(exc).__name__} when it was imported: "
            f"{' '.join(str(exc).split())}. `python manage.py showmigrations` fails on it too; "
            "fix the module's top-level code."
        ) from exc



def full_order(graph: MigrationGraph) -> list[MigrationKey]:
    """Every node in the order Django applies them from an empty database."""
    order: list[MigrationKey] = []
    seen: set[MigrationKey] = set()
    for leaf in graph.leaf_nodes():
        for key in graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                order.append(key)
    return order


def dependents(
    graph: MigrationGraph, keys: Iterable[MigrationKey]
) -> dict[MigrationKey, set[MigrationKey]]:
    """Each migration that depends (directly or not) on one of ``keys``, with which ones."""
    found: dict[MigrationKey, set[MigrationKey]] = {}
    for start in keys:
        queue = deque([start])
        seen = {start}
        while queue:
            node = graph.node_map[queue.popleft()]
            for child in node.children:
                if child.key not in seen:
                    seen.add(child.key)
                    found.setdefault(child.key, set()).add(start)
                    queue.append(child.key)
    return found


def ancestors_within(
    graph: MigrationGraph, key: MigrationKey, within: set[MigrationKey]
) -> set[MigrationKey]:
    return {k for k in graph.forwards_plan(key) if k in within}


def make_plan(graph: MigrationGraph, chosen: dict[MigrationKey, Selected]) -> Plan:
    """D = ``chosen`` plus their dependents; the base is the rest."""
    found = dependents(graph, chosen)
    reasons: dict[MigrationKey, Selected] = dict(chosen)
    for key, because in found.items():
        if key not in reasons:
            reasons[key] = Selected(key, "dependent", tuple(sorted(because)))
    order = full_order(graph)
    selected_order = tuple(k for k in order if k in reasons)
    return Plan(
        order=selected_order,
        selected=tuple(reasons[k] for k in selected_order),
        base=tuple(k for k in order if k not in reasons),
    )


def needs_models(migration: Migration) -> bool:
    """Whether applying ``migration`` renders the models of its state: every operation but
    ``RunSQL`` asks for them (a state is rendered when first asked for in any case)."""
    from django.db.migrations.operations import RunSQL

    return not all(type(operation) is RunSQL for operation in migration.operations)


def migration_file(migration: Migration) -> str | None:
    """The file a loaded migration came from."""
    module = sys.modules.get(type(migration).__module__)
    return getattr(module, "__file__", None)


def state_after(
    graph: MigrationGraph, keys: Iterable[MigrationKey], real_apps: Iterable[str],
    start: ProjectState | None = None,
) -> ProjectState:
    """The project state after applying ``keys`` (already in apply order), rendering nothing.

    ``graph.make_state`` would work out the order again for every leaf; on a long history that
    costs as much as the mutations themselves.
    """
    from django.db.migrations.state import ProjectState

    state = start.clone() if start is not None else ProjectState(real_apps=set(real_apps))
    for key in keys:
        migration = graph.nodes[key]
        assert migration is not None
        state = migration.mutate_state(state, preserve=False)
    return state
