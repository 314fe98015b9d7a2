"""The SQL that would undo a schema difference: what a reverse that leaves one behind should run.

:func:`statements` takes the structured items of :func:`guard.execution.schema.diff`
(expected = the schema before a migration, actual = the schema after rolling it back) and
returns statements that turn the actual schema into the expected one: ``DROP TABLE "t";`` for a
table left behind, ``ALTER TABLE "t" ADD COLUMN ...`` for a column the reverse dropped, and so
on. Objects that go with one already handled are left out (the columns, constraints and indexes
of a table that is dropped), and the statements come in an order that runs: drops before changes
before creations, foreign keys dropped first and added last.

What cannot be written from the catalog (a changed partition bound, an index that became
invalid) gets no statement; the difference is still listed in the report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from guard.execution.schema import DiffItem

_CREATE_INDEX = re.compile(r"^(CREATE (?:UNIQUE )?INDEX )")
_QUALIFIED = re.compile(r'^("(?:[^"]|"")*")\.("(?:[^"]|"")*")$')
_TRIGGER = re.compile(r'^("(?:[^"]|"")*") on (.+)$')
_COLUMN = re.compile(r'^(.+)\.("(?:[^"]|"")*")$')


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _schema_prefix(table: str) -> str:
    """``"s".`` for a table shown as ``"s"."t"``, empty for one in ``public``."""
    match = _QUALIFIED.match(table)
    return match.group(1) + "." if match else ""


def statements(items: Iterable[DiffItem]) -> list[str]:
    """SQL statements that undo ``items``, in an order that runs."""
    items = list(items)
    gone_tables = {i.object for i in items if i.kind == "table" and i.what == "unexpected"}
    gone_columns = {i.object for i in items if i.kind == "column" and i.what == "unexpected"}
    new_columns = {i.object for i in items if i.kind == "column" and i.what == "missing"}

    def on_gone_table(item: DiffItem) -> bool:
        definition = item.definition if isinstance(item.definition, dict) else {}
        if item.kind == "trigger":
            match = _TRIGGER.match(item.object)
            return bool(match and match.group(2) in gone_tables)
        if item.kind == "sequence":
            owner = definition.get("owned_by") or ""
            column = _COLUMN.match(owner)
            return owner in gone_columns or bool(column and column.group(1) in gone_tables)
        return definition.get("table") in gone_tables

    def of(kind: str, what: str, keep: Callable[[DiffItem], bool] = lambda _: True
           ) -> list[DiffItem]:
        return [i for i in items if i.kind == kind and i.what == what and keep(i)]

    def foreign_key(item: DiffItem) -> bool:
        return str(item.definition.get("definition", "")).startswith("FOREIGN KEY")

    sql: list[str] = []
    # 1. What the reverse left behind, dependents first.
    for item in of("trigger", "unexpected", lambda i: not on_gone_table(i)):
        match = _TRIGGER.match(item.object)
        if match:
            sql.append(f"DROP TRIGGER {match.group(1)} ON {match.group(2)};")
    for item in of("view", "unexpected"):
        kind = item.definition.get("kind", "view").upper()
        sql.append(f"DROP {kind} {item.object};")
    constraints = of("constraint", "unexpected", lambda i: not on_gone_table(i))
    for item in sorted(constraints, key=lambda i: not foreign_key(i)):
        sql += [f"ALTER TABLE {item.definition['table']} DROP CONSTRAINT {_quote(name)};"
                for name in item.definition.get("names", [])]
    for item in of("index", "unexpected", lambda i: not on_gone_table(i)):
        prefix = _schema_prefix(item.definition["table"])
        sql += [f"DROP INDEX {prefix}{_quote(name)};" for name in item.definition["names"]]
    for item in of("column", "unexpected", lambda i: not on_gone_table(i)):
        definition = item.definition
        sql.append(f"ALTER TABLE {definition['table']} DROP COLUMN {_quote(definition['name'])};")
    sql += [f"DROP TABLE {item.object};" for item in of("table", "unexpected")]
    sql += [f"DROP SEQUENCE {item.object};"
            for item in of("sequence", "unexpected", lambda i: not on_gone_table(i))]
    for item in of("function", "unexpected"):
        kind = "PROCEDURE" if item.definition.get("kind") == "procedure" else "FUNCTION"
        sql.append(f"DROP {kind} {item.object};")
    for item in of("type", "unexpected"):
        kind = "DOMAIN" if item.definition.get("kind") == "domain" else "TYPE"
        sql.append(f"DROP {kind} {item.object};")
    sql += [f"DROP SCHEMA {item.object};" for item in of("schema", "unexpected")]
    sql += [f"DROP EXTENSION {item.object};" for item in of("extension", "unexpected")]
    # 2. What it changed.
    for item in items:
        if item.what == "changed":
            sql += _change(item)
    # 3. What it dropped and did not put back.
    sql += [f"CREATE EXTENSION IF NOT EXISTS {item.object};"
            for item in of("extension", "missing")]
    sql += [f"CREATE SCHEMA {item.object};" for item in of("schema", "missing")]
    for item in of("type", "missing"):
        if item.definition.get("kind") == "enum":
            labels = ", ".join(_literal(label) for label in item.definition.get("labels", []))
            sql.append(f"CREATE TYPE {item.object} AS ENUM ({labels});")
    for item in of("sequence", "missing",
                   lambda i: i.definition.get("owned_by") not in new_columns):
        sql.append(_create_sequence(item.object, item.definition))
    sql += [f"CREATE TABLE {item.object} ();" for item in of("table", "missing")]
    for item in of("column", "missing"):
        definition = item.definition
        sql.append(f"ALTER TABLE {definition['table']} ADD COLUMN {_quote(definition['name'])} "
                   f"{_column_spec(definition)};")
    for item in sorted(of("constraint", "missing"), key=foreign_key):
        definition = item.definition
        sql += [f"ALTER TABLE {definition['table']} ADD CONSTRAINT {_quote(name)} "
                f"{definition['definition']};" for name in definition.get("names", [])]
    for item in of("index", "missing"):
        sql += [_named_index(item.definition["definition"], name)
                for name in item.definition["names"]]
    sql += [_terminated(item.definition["definition"]) for item in of("function", "missing")]
    for item in of("view", "missing"):
        kind = item.definition.get("kind", "view").upper()
        sql.append(f"CREATE {kind} {item.object} AS {_terminated(item.definition['definition'])}")
    sql += [_terminated(item.definition["definition"]) for item in of("trigger", "missing")]
    return sql


def _change(item: DiffItem) -> list[str]:
    """Statements that put back the expected value of one changed field, where one exists."""
    old: Any = item.definition
    if not isinstance(old, dict):
        return []
    expected: Any = old.get(item.field)
    if item.kind == "column":
        target = f"ALTER TABLE {old['table']} ALTER COLUMN {_quote(old['name'])}"
        if item.field == "type":
            return [f"{target} TYPE {expected};"]
        if item.field == "not_null":
            return [f"{target} {'SET' if expected else 'DROP'} NOT NULL;"]
        if item.field == "default" and not old.get("generated"):
            return [f"{target} SET DEFAULT {expected};" if expected else f"{target} DROP DEFAULT;"]
        if item.field == "comment":
            name = f"{old['table']}.{_quote(old['name'])}"
            return [f"COMMENT ON COLUMN {name} IS {_literal(expected)};"]
        return []
    if item.kind == "table" and item.field == "comment":
        return [f"COMMENT ON TABLE {item.object} IS {_literal(expected)};"]
    if item.kind in ("view", "function") and item.field == "definition":
        if old.get("kind") == "view":
            return [f"CREATE OR REPLACE VIEW {item.object} AS {_terminated(expected)}"]
        if item.kind == "function":
            return [_terminated(expected)]
    return []


def _named_index(definition: str, name: str) -> str:
    """The snapshot keeps an index's definition without its name; put ``name`` back."""
    match = _CREATE_INDEX.match(definition)
    if not match:
        return _terminated(definition)
    return f"{match.group(1)}{_quote(name)} {definition[match.end():]};"


def _column_spec(column: dict[str, Any]) -> str:
    """``<type> [NOT NULL] [DEFAULT ...]`` (or the identity / generated clause instead of the
    default), as ``ADD COLUMN`` takes it."""
    parts = [column["type"]]
    if column.get("collation"):
        parts.append(f"COLLATE {_quote(column['collation'])}")
    if column.get("not_null"):
        parts.append("NOT NULL")
    if column.get("generated"):
        parts.append(f"GENERATED ALWAYS AS ({column['default']}) STORED")
    elif column.get("identity"):
        parts.append(f"GENERATED {column['identity'].upper()} AS IDENTITY")
    elif column.get("default") is not None:
        parts.append(f"DEFAULT {column['default']}")
    return " ".join(parts)


def _create_sequence(name: str, sequence: dict[str, Any]) -> str:
    parts = [f"CREATE SEQUENCE {name}"]
    for clause, key in (("AS", "type"), ("INCREMENT BY", "increment"), ("MINVALUE", "min"),
                        ("MAXVALUE", "max"), ("START WITH", "start"), ("CACHE", "cache")):
        if sequence.get(key) is not None:
            parts.append(f"{clause} {sequence[key]}")
    if sequence.get("cycle"):
        parts.append("CYCLE")
    return " ".join(parts) + ";"


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    return "'" + str(value).replace("'", "''") + "'"


def _terminated(sql: str) -> str:
    sql = sql.strip()
    return sql if sql.endswith(";") else sql + ";"


def reverse_hint(migration: str, sql: list[str]) -> str:
    """The hint for a reverse that leaves the schema different, with the fix written out."""
    told = f"The reverse of {migration} does not undo everything its forward did."
    if not sql:
        return (f"{told} Make the reverse (reverse_code / reverse_sql, or the operations' own "
                "reverse) restore what is listed.")
    literal = repr(sql[0]) if len(sql) == 1 else repr(sql)
    return (
        f"{told} If the reverse should undo it, add reverse_sql={literal} to the RunSQL that "
        "made the change / a reverse step that runs: " + " ".join(sql) + " (as the migration's "
        f"first operation: migrations.RunSQL(migrations.RunSQL.noop, reverse_sql={literal}))."
    )
