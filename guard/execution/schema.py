"""Snapshots of a PostgreSQL schema, and the differences between two of them.

This module owns what "the same schema" means. :func:`snapshot` reads the catalog with one
query that returns JSON (one round trip, a few milliseconds) and turns it into a plain
:data:`Schema`: ``kind -> identity -> definition``. :func:`diff` compares two snapshots into
human-readable differences (and the same as structured :class:`DiffItem` objects, from which
:mod:`guard.execution.undo` writes the SQL that would undo them), plus warnings for changes that
do not matter to the application: a constraint or index that only has another name, columns in
another order.

Covered, in every schema but ``pg_catalog``, ``information_schema``, ``pg_toast*`` and
``pg_temp*``: schemas, tables (columns, comments, partitioning), constraints, indexes, sequences
(their settings, never their current value), views and materialized views, triggers, functions
and procedures, enums, domains, composite and range types, and extensions. Objects that belong
to an extension are covered by the extension's entry, functions PostgreSQL makes for a type
(range constructors) by the type's. Left out: OIDs, relfilenodes, toast tables, sequence values,
aggregates, and Django's own table ``django_migrations`` with everything it owns.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from guard.execution.catalog import SQL

Schema = dict[str, dict[str, Any]]
"""``kind -> identity -> definition``; JSON-serialisable."""

_TABLE_KINDS = {"r": "table", "p": "partitioned table"}
_VIEW_KINDS = {"v": "view", "m": "materialized view"}
_FUNCTION_KINDS = {"f": "function", "p": "procedure", "w": "window function"}
_TYPE_KINDS = {"e": "enum", "d": "domain", "c": "composite", "r": "range"}
_IDENTITY = {"": None, "a": "always", "d": "by default"}
_INDEX_NAME = re.compile(r'^(CREATE (?:UNIQUE )?INDEX )(?:"(?:[^"]|"")*"|\S+) ON ')


@functools.lru_cache(maxsize=16384)  # a snapshot quotes the same few hundred names each time
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(schema: str, name: str) -> str:
    """``"name"`` in ``public``, ``"schema"."name"`` elsewhere."""
    return _quote(name) if schema == "public" else f"{_quote(schema)}.{_quote(name)}"


def snapshot(cursor: Any) -> Schema:
    """The schema of the database ``cursor`` is connected to, read in one query.

    ``cursor`` is any DB-API cursor: psycopg2, psycopg 3 or a Django ``connection.cursor()``.
    """
    cursor.execute(SQL)
    return build(read(cursor))


def read(cursor: Any) -> dict[str, Any]:
    """The JSON object the query on ``cursor`` returned."""
    raw = cursor.fetchone()[0]
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw).decode()
    catalog: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
    return catalog


def build(catalog: dict[str, Any]) -> Schema:
    """The schema from what :data:`SQL` returned."""
    schema: Schema = {
        kind: {}
        for kind in (
            "schema", "table", "column", "constraint", "index", "sequence", "view",
            "trigger", "function", "type", "extension",
        )
    }  # fmt: skip
    schema["schema"] = {_quote(name): {} for name in catalog["schemas"]}
    for row in catalog["tables"]:
        schema["table"][_qualified(row["schema"], row["name"])] = {
            "kind": _TABLE_KINDS[row["kind"]],
            "unlogged": row["unlogged"],
            "inherits": [_qualified(*parent) for parent in row["inherits"] or []],
            "partition_bound": row["partition_bound"],
            "partition_key": row["partition_key"],
            "comment": row["comment"],
        }
    by_table: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in catalog["columns"]:
        by_table[row["schema"], row["table"]].append(row)
    for (schema_name, table_name), rows in by_table.items():
        table = _qualified(schema_name, table_name)
        for position, row in enumerate(sorted(rows, key=lambda r: r["position"]), start=1):
            schema["column"][f"{table}.{_quote(row['name'])}"] = {
                "table": table,
                "name": row["name"],
                "type": row["type"],
                "not_null": row["not_null"],
                "default": row["default"],
                "identity": _IDENTITY.get(row["identity"], row["identity"]),
                "generated": row["generated"] == "s" or None,
                "collation": row["collation"],
                "comment": row["comment"],
                "position": position,
            }
    for kind, source in (("constraint", "constraints"), ("index", "indexes")):
        for row in catalog[source]:
            table = _qualified(row["schema"], row["table"])
            definition = row["definition"]
            if kind == "index":
                named = _INDEX_NAME.match(definition)  # (a template in sub() costs more)
                if named:
                    definition = f"{named.group(1)}ON {definition[named.end():]}"
            entry = schema[kind].setdefault(
                f"{table} {definition}", {"table": table, "definition": definition, "names": []}
            )
            entry["names"] = sorted([*entry["names"], row["name"]])
            if kind == "index":
                entry["valid"] = row["valid"] and entry.get("valid", True)
    for row in catalog["sequences"]:
        owner = row.pop("owned_by")
        name = _qualified(row.pop("schema"), row.pop("name"))
        row["owned_by"] = f"{_qualified(owner[0], owner[1])}.{_quote(owner[2])}" if owner else None
        schema["sequence"][name] = row
    for row in catalog["views"]:
        schema["view"][_qualified(row["schema"], row["name"])] = {
            "kind": _VIEW_KINDS[row["kind"]],
            "definition": row["definition"],
        }
    for row in catalog["triggers"]:
        table = _qualified(row["schema"], row["table"])
        schema["trigger"][f"{_quote(row['name'])} on {table}"] = {
            "enabled": row["enabled"],
            "definition": row["definition"],
        }
    for row in catalog["functions"]:
        signature = f"{_qualified(row['schema'], row['name'])}({row['arguments']})"
        schema["function"][signature] = {
            "kind": _FUNCTION_KINDS.get(row["kind"], row["kind"]),
            "definition": row["definition"],
        }
    for row in catalog["types"]:
        name = _qualified(row.pop("schema"), row.pop("name"))
        row["kind"] = _TYPE_KINDS[row["kind"]]
        schema["type"][name] = {
            key: value
            for key, value in row.items()
            if value is not None and (row["kind"] == "domain" or key not in ("not_null", "default"))
        }
    for row in catalog["extensions"]:
        schema["extension"][_quote(row["name"])] = {
            "version": row["version"],
            "schema": row["schema"],
        }
    return {kind: dict(sorted(entries.items())) for kind, entries in schema.items()}


@dataclass(frozen=True)
class DiffItem:
    """One difference, structured: what :mod:`guard.execution.undo` turns into the SQL that
    undoes it."""

    kind: str
    """``table``, ``column``, ``constraint``, ``index``, ``sequence``, ``view``, ..."""
    object: str
    """The identity in the snapshot: ``"t"``, ``"t"."c"``, ``"t" <index definition>``, ..."""
    what: Literal["missing", "unexpected", "changed"]
    definition: Any
    """The expected definition (missing, changed), or the one found (unexpected)."""
    field: str = ""
    """For ``changed``: which field differs (empty for a definition that is not a dict)."""
    found: Any = None
    """For ``changed``: the value found instead of ``definition[field]``."""


@dataclass(frozen=True)
class SchemaDiff:
    """What differs between two snapshots; true when there is a real difference."""

    differences: tuple[str, ...]
    warnings: tuple[str, ...]
    """Changes that do not change behaviour: only a name, only the order of columns."""
    items: tuple[DiffItem, ...] = field(default=(), compare=False)
    """The differences again, structured, in the same order of kinds and identities."""

    def __bool__(self) -> bool:
        return bool(self.differences)


_NOT_COMPARED = frozenset({"position", "names"})


def diff(expected: Schema, actual: Schema) -> SchemaDiff:
    """How ``actual`` differs from ``expected``, in sorted human-readable lines.

    "missing": in ``expected`` only; "unexpected": in ``actual`` only; "changed: <field>:
    <expected> -> <actual>" for an object in both.
    """
    differences: list[str] = []
    warnings: list[str] = []
    items: list[DiffItem] = []
    for kind in sorted(expected.keys() | actual.keys()):
        before, after = expected.get(kind, {}), actual.get(kind, {})
        if before == after:  # the usual case, compared in C: nothing differs, nothing to warn
            continue
        for identity in sorted(before.keys() | after.keys()):
            if identity not in after:
                differences.append(f"{kind} {_label(kind, identity, before[identity])}: missing")
                items.append(DiffItem(kind, identity, "missing", before[identity]))
                continue
            if identity not in before:
                differences.append(f"{kind} {_label(kind, identity, after[identity])}: unexpected")
                items.append(DiffItem(kind, identity, "unexpected", after[identity]))
                continue
            old, new = before[identity], after[identity]
            if old == new:
                continue
            label = _label(kind, identity, old)
            if not (isinstance(old, dict) and isinstance(new, dict)):
                if old != new:
                    differences.append(f"{kind} {label}: changed: {_change(old, new)}")
                    items.append(DiffItem(kind, identity, "changed", old, found=new))
                continue
            for name in sorted(old.keys() | new.keys()):
                if name not in _NOT_COMPARED and old.get(name) != new.get(name):
                    change = _change(old.get(name), new.get(name))
                    differences.append(f"{kind} {label}: changed: {name}: {change}")
                    items.append(DiffItem(kind, identity, "changed", old, name, new.get(name)))
            old_names, new_names = old.get("names", []), new.get("names", [])
            if old_names != new_names:
                line = f"{kind} {label}: changed: names: {_change(old_names, new_names)}"
                if len(old_names) == len(new_names):
                    warnings.append(line.replace(": changed: names:", ": only the name differs:"))
                else:
                    differences.append(line)
                    items.append(DiffItem(kind, identity, "changed", old, "names", new_names))
    if expected.get("column") != actual.get("column"):
        warnings.extend(_column_order(expected.get("column", {}), actual.get("column", {})))
    return SchemaDiff(tuple(sorted(differences)), tuple(sorted(warnings)), tuple(items))


def _label(kind: str, identity: str, definition: Any) -> str:
    if kind in ("constraint", "index") and isinstance(definition, dict):
        names = ", ".join(_quote(name) for name in definition.get("names", []))
        return f"{names} on {definition['table']}: {definition['definition']}"
    return identity


def _column_order(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """A warning per table whose columns present on both sides come in another order."""

    def orders(columns: dict[str, Any]) -> dict[str, list[str]]:
        tables: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for identity, column in columns.items():
            tables[column["table"]].append((column["position"], identity))
        return {table: [name for _, name in sorted(cols)] for table, cols in tables.items()}

    old_orders, new_orders = orders(before), orders(after)
    warnings = []
    for table in sorted(old_orders.keys() & new_orders.keys()):
        common = set(old_orders[table]) & set(new_orders[table])
        old = [before[c]["name"] for c in old_orders[table] if c in common]
        new = [after[c]["name"] for c in new_orders[table] if c in common]
        if old != new:
            warnings.append(
                f"columns of {table} are in a different order: {', '.join(old)} -> {', '.join(new)}"
            )
    return warnings


def _change(old: Any, new: Any, context: int = 30) -> str:
    """``<old> -> <new>``; long texts shortened to the part that differs."""
    if isinstance(old, str) and isinstance(new, str) and max(len(old), len(new)) > 2 * context:
        start = 0
        while start < min(len(old), len(new)) and old[start] == new[start]:
            start += 1
        end = 0
        while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
            end += 1
        start = max(start - context, 0)
        end = max(end - context, 0)

        def cut(text: str) -> str:
            middle = text[start : len(text) - end]
            shown = ("..." if start else "") + middle + ("..." if end else "")
            return json.dumps(shown, ensure_ascii=False)

        return f"{cut(old)} -> {cut(new)}"
    return f"{_show(old)} -> {_show(new)}"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
