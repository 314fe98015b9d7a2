"""What a step of the round trip is judged by: the schema, and what the tables hold, read in one
round trip to the server.

A step reads the schema (:mod:`guard.execution.schema`) and, where a rollback's rows are to be
checked, the row count and checksum of every table (:mod:`guard.execution.contents`): one
statement creates the session's checksum function and reads both. A server that does not let the
session create a function (no PL/pgSQL) gets the two readings one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guard.database.server import driver_errors
from guard.execution import catalog, contents, schema

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
_together = True
"""Whether the driver takes two statements in one call (not with server-side binding)."""


def observe(cursor: Any, *, rows: bool = True) -> Observation:
    """The schema of the database ``cursor`` is connected to, and with ``rows`` what its
    tables hold. Outside a transaction: a failing statement must not abort one of the
    caller's."""
    global _functions, _together
    if not rows:
        return Observation(schema.snapshot(cursor), None)
    while _functions:
        try:
            if _together:
                cursor.execute(contents.FUNCTION + ";\n" + _BOTH)
                contents.last_result(cursor)
            else:
                cursor.execute(contents.FUNCTION)
                cursor.execute(_BOTH)
        except driver_errors() + _django_errors() as exc:
            if _together and "multiple commands" in str(exc):
                _together = False
                continue
            if "plpgsql" not in str(exc) and "permission denied" not in str(exc):
                raise
            _functions = False
            break
        catalog = schema.read(cursor)
        found = contents.from_json(catalog.pop("contents"))
        return Observation(schema.build(catalog), found)
    return Observation(schema.snapshot(cursor), contents.snapshot_without_functions(cursor))


def _django_errors() -> tuple[type[BaseException], ...]:
    try:
        from django.db import DatabaseError
    except ImportError:  # the handoff reads a spare with the driver alone
        return ()
    return (DatabaseError,)
