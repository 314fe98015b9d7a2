"""What to do instead: for each finding, the safe sequence as Django code, names filled in.

The advice follows what strong_migrations gives Rails users, translated to Django's operations:
``AddIndexConcurrently`` in a migration with ``atomic = False``; ``AddConstraintNotValid`` then
``ValidateConstraint``; a ``CHECK (col IS NOT NULL) NOT VALID`` validated before SET NOT NULL
(PostgreSQL 12+ then skips the scan); add a column, backfill, swap for a type change;
``SeparateDatabaseAndState`` where Django's state changes but the database should change another
way. Every hint ends with ``lock_timeout``: a migration that waits for its lock makes every query
on the table queue behind it.
"""

from __future__ import annotations

import re
from typing import Any

_INDEX = re.compile(r'CREATE (UNIQUE )?INDEX ("?[\w]+"?) ON ("?[\w.]+"?)(.*)$', re.DOTALL)
_UNIQUE = re.compile(r'ADD CONSTRAINT ("?\w+"?) UNIQUE \(([^)]*)\)')
_FOREIGN = re.compile(
    r'ADD CONSTRAINT ("?\w+"?) FOREIGN KEY \(([^)]*)\) REFERENCES ([^ ]+ \([^)]*\))')
_COLUMN = re.compile(r'ALTER COLUMN "?(\w+)"? (?:SET NOT NULL|TYPE)')


BACKWARD = (
    "This is what rolling the migration back does (Django's reverse of its operations); if the "
    "rollback must be safe under load, write the reverse yourself (RunSQL with reverse_sql, or "
    "SeparateDatabaseAndState with database_operations) along these lines: "
)


def lock_timeout(table: str) -> str:
    return (f"Whatever runs, give it a lock_timeout (a first operation "
            f"migrations.RunSQL(\"SET LOCAL lock_timeout = '5s'\", migrations.RunSQL.noop)): "
            f"waiting for its lock, it makes every query on {table} queue behind it.")


def _model(operation: Any) -> str:
    return str(getattr(operation, "model_name", "") or getattr(operation, "name", "") or "model")


def _check(condition: str, name: str) -> str:
    import django

    keyword = "condition" if django.VERSION >= (5, 1) else "check"
    return f'models.CheckConstraint({keyword}=models.Q({condition}), name="{name}")'


def hint(kind: str, table: str, sql: str, operation: Any, mode: str) -> str:
    kind_of = type(operation).__name__ if operation is not None else "RunSQL"
    text = " ".join(sql.split())
    if kind == "blocking-index":
        advice = _index(table, text, operation, kind_of)
    elif kind == "scan":
        advice = _scan(table, text, operation)
    elif kind_of == "AddField":
        advice = (
            f"Adding {getattr(operation, 'name', 'the column')} this way rewrites {table} under "
            f"{mode} (a volatile default is computed for every row). Add it without db_default "
            "(or with a constant one), fill the existing rows in batches in a migration with "
            "atomic = False, then set the default with AlterField: it applies to new rows only."
        )
    else:
        column = _COLUMN.search(text)
        name = column.group(1) if column else "the column"
        advice = (
            f"{kind_of} rewrites {table} under {mode}: no reads or writes until it ends, for "
            f"as long as the table is big. Instead: AddField {name}_new with the new type "
            f"(null=True); fill it in batches in a migration with atomic = False "
            f"(RunPython over pk ranges: .update({name}_new=F(\"{name}\"))) while the "
            f"application writes both; then in one short migration RemoveField {name} and "
            f"RenameField {name}_new to {name}."
        )
    return f"{advice} {lock_timeout(table)}"


def _index(table: str, text: str, operation: Any, kind_of: str) -> str:
    model = _model(operation)
    if kind_of == "AddIndex" and getattr(operation, "index", None) is not None:
        index = operation.index
        fields = ", ".join(f'"{f}"' for f in getattr(index, "fields", ()) or ())
        return (
            f"Build it without blocking writes to {table}: "
            "from django.contrib.postgres.operations import AddIndexConcurrently, in a "
            f"migration with atomic = False: operations = [AddIndexConcurrently(\"{model}\", "
            f"models.Index(fields=[{fields}], name=\"{index.name}\"))]."
        )
    if kind_of == "AddField" and " UNIQUE" in text:
        field = getattr(operation, "name", "the field")
        return (
            f"Adding {field} with unique=True builds its unique index under a lock that blocks "
            f"writes to {table}. Add it without unique (null=True), then, in a migration with "
            f"atomic = False, SeparateDatabaseAndState(state_operations=[AlterField to "
            f"unique=True], database_operations=[RunSQL('CREATE UNIQUE INDEX CONCURRENTLY ... ON "
            f"{table} (...)'), RunSQL('ALTER TABLE {table} ADD CONSTRAINT ... UNIQUE USING "
            f"INDEX ...')])."
        )
    unique = _UNIQUE.search(text)
    if unique:
        name, columns = unique.groups()
        return (
            f"Adding a unique constraint builds its index under a lock that blocks writes to "
            f"{table}. In a migration with atomic = False: migrations.SeparateDatabaseAndState("
            f"state_operations=[the {kind_of}], database_operations=[migrations.RunSQL("
            f"'CREATE UNIQUE INDEX CONCURRENTLY {name} ON {table} ({columns})', "
            f"reverse_sql='DROP INDEX CONCURRENTLY {name}'), migrations.RunSQL('ALTER TABLE "
            f"{table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}', reverse_sql='ALTER "
            f"TABLE {table} DROP CONSTRAINT {name}')])."
        )
    index = _INDEX.search(text)
    if index:
        unique_word, name, on, rest = index.groups()
        create = (f"CREATE {unique_word or ''}INDEX CONCURRENTLY {name} ON {on}"
                  f"{rest.rstrip(';')}")
        return (
            f"Build it without blocking writes to {table}, in a migration with atomic = False: "
            f"migrations.SeparateDatabaseAndState(state_operations=[the {kind_of}], "
            f"database_operations=[the {kind_of} with db_index=False, migrations.RunSQL("
            f"'{create}', reverse_sql='DROP INDEX CONCURRENTLY {name}')])."
        )
    return (f"Build the index with CONCURRENTLY (AddIndexConcurrently, or RunSQL in a migration "
            f"with atomic = False) so that writes to {table} go on meanwhile.")


def _scan(table: str, text: str, operation: Any) -> str:
    model = _model(operation)
    column = _COLUMN.search(text)
    if "SET NOT NULL" in text and column:
        name = column.group(1)
        check = f"{table}_{name}_not_null"
        return (
            f"SET NOT NULL scans {table} under ACCESS EXCLUSIVE. Prove it first without "
            f"blocking: migration 1: AddConstraintNotValid(\"{model}\", "
            f"{_check(f'{name}__isnull=False', check)}) (from django.contrib.postgres."
            f"operations); migration 2: ValidateConstraint(\"{model}\", \"{check}\"); "
            f"migration 3: this AlterField, then RemoveConstraint(\"{model}\", \"{check}\"): "
            "PostgreSQL 12+ sees the validated check and skips the scan."
        )
    foreign = _FOREIGN.search(text)
    if foreign or "REFERENCES" in text:
        name, columns, target = foreign.groups() if foreign else ("name", "column", "other")
        return (
            f"Adding the foreign key validates every row of {table} while it locks both "
            "tables against writes. Add it NOT VALID, validate it later: "
            "migrations.SeparateDatabaseAndState(state_operations=[the operation], "
            "database_operations=[the operation with db_constraint=False, migrations.RunSQL("
            f"'ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({columns}) REFERENCES "
            f"{target} DEFERRABLE INITIALLY DEFERRED NOT VALID')]), then in the next migration "
            f"migrations.RunSQL('ALTER TABLE {table} VALIDATE CONSTRAINT {name}'), which takes "
            "SHARE UPDATE EXCLUSIVE and lets writes go on."
        )
    return (
        f"The constraint is validated over every row of {table} under a lock that blocks "
        f"writes. Add it with AddConstraintNotValid(\"{model}\", ...) (django.contrib.postgres."
        f"operations), then ValidateConstraint(\"{model}\", name) in the next migration."
    )


def held_hint(table: str, mode: str, taken_by: int | None, through: str,
              operation: Any) -> str:
    return (
        f"An atomic migration keeps every lock until it commits, so {table} stays locked "
        f"({mode}) through {through}, however long that takes on the real data. Move the slow "
        f"work to a migration of its own (schema first, data after), or set atomic = False on "
        f"this one so that operation {taken_by} commits before it. {lock_timeout(table)}"
    )
