"""What the tables hold: each table's row count and a checksum of its rows.

Taken with the schema snapshots, so that rolling a migration back is checked for the rows as
well as for the schema: a table whose rows differ after the rollback from before the migration
lost (or changed) data that the deploy's rollback would lose too. The checksum is an md5 of the
sorted md5s of the rows' text, so it depends on the rows, not on their physical order. Django's
``django_migrations`` is left out: the round trip itself writes it.
"""

from __future__ import annotations

from typing import Any

Contents = dict[str, tuple[int, str]]
"""table -> (row count, checksum)."""

_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (current_schemas(false))
  AND c.relname <> 'django_migrations'
ORDER BY c.relname
"""


FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.migration_guard_contents()
RETURNS TABLE (name text, n bigint, checksum text) LANGUAGE plpgsql AS $body$
DECLARE found record;
BEGIN
    FOR found IN
        SELECT c.relname, ns.nspname
        FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND ns.nspname = ANY (current_schemas(false))
          AND c.relname <> 'django_migrations'
    LOOP
        name := found.relname;
        EXECUTE 'SELECT count(*), md5(coalesce(string_agg(md5(t::text), '''' ORDER BY '
                || 'md5(t::text)), '''')) FROM ' || quote_ident(found.nspname) || '.'
                || quote_ident(found.relname) || ' t' INTO n, checksum;
        RETURN NEXT;
    END LOOP;
END $body$
"""
"""A function of the session (in ``pg_temp``: no schema of the project's, gone with the
connection) that checksums every table in one call: one small query per table, planned as it
runs, where one ``UNION ALL`` of every table costs more to plan than to run (~40 ms for 272
tables). Created again with each use, so that a session that lost it (a migration's ``DISCARD
ALL``) still has it."""

JSON = ("(SELECT coalesce(json_agg(json_build_array(name, n, checksum)), '[]') "
        "FROM pg_temp.migration_guard_contents())")
"""The contents as JSON, for a query that reads them along with something else."""


def from_json(rows: list[list[Any]]) -> Contents:
    return {str(name): (int(count), str(checksum)) for name, count, checksum in rows}


def last_result(cursor: Any) -> None:
    """After several statements in one call: move to the last one's rows (psycopg 3 starts at
    the first statement's result, psycopg2 has only the last)."""
    while cursor.description is None and cursor.nextset():
        pass


def snapshot(cursor: Any) -> Contents:
    """Every table of the schemas on the search path."""
    cursor.execute(FUNCTION)
    cursor.execute("SELECT name, n, checksum FROM pg_temp.migration_guard_contents()")
    return {str(name): (int(count), str(checksum)) for name, count, checksum in cursor.fetchall()}


def snapshot_without_functions(cursor: Any) -> Contents:
    """:func:`snapshot` where the session may not create a function: one query after the
    table list."""
    cursor.execute(_TABLES)
    tables = [str(row[0]) for row in cursor.fetchall()]
    if not tables:
        return {}
    parts = [
        f"SELECT %s, count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)),"
        f" '')) FROM {_quote(table)} t"
        for table in tables
    ]
    cursor.execute(" UNION ALL ".join(parts), tables)
    return {str(name): (int(count), str(checksum)) for name, count, checksum in cursor.fetchall()}


def lost(before: Contents, after: Contents, *, left: Contents | None = None,
         entering: Contents | None = None) -> list[str]:
    """A warning for each table whose rows differ after a migration's rollback (``after``) from
    before the migration (``before``).

    ``left`` is what the migration's forward left, ``entering`` what the tables held just before
    its rollback: a table that already differed there lost its rows to a later migration's
    rollback (reported on that one), not to this one.
    """
    found = []
    for table, (count, checksum) in sorted(before.items()):
        if table not in after or after[table] == (count, checksum):
            continue
        if (left is not None and entering is not None and table in left and table in entering
                and left[table] != entering[table]):
            continue
        now = after[table][0]
        if now < count:
            what = (f"{count} row(s) before, {now} after (data that rolling back this migration "
                    "loses)")
        elif now > count:
            what = f"{count} row(s) before, {now} after (rows the migration added stay behind)"
        else:
            what = (f"the same {count} row(s) in number, with other contents (values the "
                    "rollback does not put back)")
        found.append(f"rows of {table} not restored by the rollback: {what}")
    return found


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
