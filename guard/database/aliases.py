"""Which of the project's ``DATABASES`` aliases a run tests, and how it treats the others.

``manage.py migrate --database ALIAS`` migrates one alias; the routers decide which operations
run there. Django's test runner creates a test database for every alias except those whose
``TEST`` has ``MIRROR``, which it points at the mirror's test database. migration-guard does the
same: every alias it tests gets a throwaway database of its own; a mirror is pointed at its
mirror's and never migrated; an alias whose engine is not PostgreSQL is not tested, and the
report says so. ``--database`` (``databases`` in the config) narrows the tested aliases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from guard.errors import FatalError

POSTGRES_ENGINES = ("postgresql", "postgis", "postgres")


def is_postgres(engine: str) -> bool:
    return any(word in engine for word in POSTGRES_ENGINES)


@dataclass(frozen=True)
class Aliases:
    tested: tuple[str, ...]
    """Migrated, each on a throwaway database of its own, in ``DATABASES`` order."""
    mirrors: dict[str, str] = field(default_factory=dict)
    """alias -> the alias whose database it points at (``TEST: {"MIRROR": ...}``)."""
    not_postgres: dict[str, str] = field(default_factory=dict)
    """alias -> its ENGINE: not tested, migration-guard tests PostgreSQL only."""
    left_out: tuple[str, ...] = ()
    """PostgreSQL aliases that ``--database`` / ``databases`` leave out."""


def classify(
    databases: Mapping[str, Mapping[str, Any]], wanted: Sequence[str], settings: str
) -> Aliases:
    """Sort the aliases of ``databases`` (the project's, as its settings wrote them).

    ``wanted`` (``--database``) names the aliases to test, empty for every alias Django would
    migrate; naming one that does not exist, is a mirror or is not PostgreSQL is a FatalError.
    """
    mirrors: dict[str, str] = {}
    not_postgres: dict[str, str] = {}
    candidates: list[str] = []
    for alias, entry in databases.items():
        mirror = (entry.get("TEST") or {}).get("MIRROR")
        engine = str(entry.get("ENGINE") or "")
        if mirror:
            if mirror not in databases:
                raise FatalError(
                    f"{settings}: DATABASES[{alias!r}]['TEST']['MIRROR'] is {mirror!r}, which "
                    f"is not an alias of DATABASES ({', '.join(databases)}). Name the alias it "
                    "mirrors."
                )
            mirrors[alias] = mirror
        elif not is_postgres(engine):
            not_postgres[alias] = engine
        else:
            candidates.append(alias)
    for alias in wanted:
        if alias not in databases:
            raise FatalError(
                f"--database {alias}: {settings} has no such alias in DATABASES (it has "
                f"{', '.join(databases)})."
            )
        if alias in mirrors:
            raise FatalError(
                f"--database {alias}: DATABASES[{alias!r}] mirrors {mirrors[alias]!r} (TEST "
                "MIRROR), so Django never migrates it and neither does migration-guard: its "
                f"migrations are tested on {mirrors[alias]}."
            )
        if alias in not_postgres:
            raise FatalError(
                f"--database {alias}: DATABASES[{alias!r}]['ENGINE'] is "
                f"{not_postgres[alias]!r}. migration-guard tests migrations on PostgreSQL only; "
                "leave this alias out, or point it at PostgreSQL."
            )
    tested = tuple(a for a in candidates if not wanted or a in wanted)
    return Aliases(
        tested=tested,
        mirrors=mirrors,
        not_postgres=not_postgres,
        left_out=tuple(a for a in candidates if a not in tested),
    )
