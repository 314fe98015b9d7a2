"""What a step of the round trip is judged by: the schema, and what the tables hold, read in one
round trip to the server.

A step reads the schema (:mod:`guard.execution.schema`) and, where a rollback's rows are to be
checked, the row count and checksum of every table (:mod:`guard.execution.contents`): one
statement creates the session's checksum function and reads both. A server that does not let the
session create a function (no PL/pgSQL) gets the two readings one after the other.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from guard.database.server import driver_errors
from guard.execution import catalog, contents, schema
from guard.execution.catalog import SQL

_BOTH = catalog.with_more("contents", contents.JSON)


@dataclass(frozen=True)
class Observation:
    schema: schema.Schema
    rows: contents.Contents | None
    """None when they were not read."""

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.schema,
                "rows": None if self.rows is None else {k: list(v) for k, v in self.rows.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Observation:
        rows = data.get("rows")
        return cls(data["schema"], None if rows is None else {
            str(k): (int(v[0]), str(v[1])) for k, v in rows.items()})


_functions = True
"""Whether sessions may create the checksum function (False once one could not)."""
_prepared: dict[tuple[int, bool], str] = {}
"""(connection, with rows) -> the name of the statement prepared for it in its session."""
_names = itertools.count(1)


def observe(cursor: Any, *, rows: bool = True) -> Observation:
    """The schema of the database ``cursor`` is connected to, and with ``rows`` what its
    tables hold. Outside a transaction: a failing statement must not abort one of the
    caller's.

    The reading is a statement prepared once per session (planning the catalog query costs a
    quarter of running it); a session that lost it (a migration's ``DISCARD ALL``, a
    reconnection, a pooler's other server session) prepares it again."""
    global _functions
    with_rows = rows and _functions
    key = (id(getattr(cursor, "connection", cursor)), with_rows)
    name = _prepared.get(key)
    if name is not None:
        try:
            cursor.execute(f"EXECUTE {name}")
        except driver_errors() + _django_errors():
            name = None
    if name is None:
        name = f"migration_guard_observe_{next(_names)}"
        try:
            if with_rows:
                cursor.execute(contents.FUNCTION)
            cursor.execute(f"PREPARE {name} AS {_BOTH if with_rows else SQL}")
        except driver_errors() + _django_errors() as exc:
            if not with_rows or ("plpgsql" not in str(exc)
                                 and "permission denied" not in str(exc)):
                raise
            _functions = False
            return observe(cursor, rows=rows)
        _prepared[key] = name
        cursor.execute(f"EXECUTE {name}")
    catalog = schema.read(cursor)
    if not with_rows:
        found = contents.snapshot_without_functions(cursor) if rows else None
        return Observation(schema.build(catalog), found)
    found = contents.from_json(catalog.pop("contents"))
    return Observation(schema.build(catalog), found)


def _django_errors() -> tuple[type[BaseException], ...]:
    try:
        from django.db import DatabaseError
    except ImportError:  # the handoff reads a spare with the driver alone
        return ()
    return (DatabaseError,)
