"""``migration-guard stats``: production's table sizes, read from the catalogs alone.

It connects to the database given (production or a replica) with the session read-only and a
short ``statement_timeout``, and reads ``pg_class``, ``pg_index``, ``pg_stat_user_tables`` and
the size functions: never a row of a table, so the tables' scan counters stay as they were and a
role with CONNECT alone can take it (the size functions check no privilege on the table). What
it writes (:data:`FORMAT`) holds names and sizes, no row data: each table of the database's own
schemas with the planner's row estimate and its heap, TOAST and index sizes, each index's size,
the server's version and the settings that change how fast DDL runs, and when it was taken.
"""

from __future__ import annotations

import datetime
import json
import sys
import urllib.parse
from typing import Any

from guard.database.server import Server, connect, driver_errors, one_line, parse_url, redact
from guard.errors import FatalError

FORMAT = "migration-guard-stats"
VERSION = 1
SETTINGS = ("maintenance_work_mem", "max_parallel_maintenance_workers", "work_mem",
            "shared_buffers", "wal_level")
"""The server settings kept with the sizes: what makes an index build or a rewrite faster."""
STATEMENT_TIMEOUT = "10s"

_TABLES = """
SELECT n.nspname, c.relname, c.relkind::text, c.reltuples::bigint, s.n_live_tup,
       pg_relation_size(c.oid), COALESCE(pg_relation_size(c.reltoastrelid), 0)
           + COALESCE((SELECT pg_relation_size(i.indexrelid) FROM pg_index i
                       WHERE i.indrelid = c.reltoastrelid LIMIT 1), 0),
       pg_indexes_size(c.oid)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
ORDER BY 1, 2
"""
_INDEXES = """
SELECT n.nspname, t.relname, c.relname, pg_relation_size(c.oid), i.indisunique
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE t.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
ORDER BY 1, 2, 3
"""


def database_of(url: str) -> str:
    """The database a URL names (its path), which ``stats`` needs: the server alone is not
    enough."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))
    if not name:
        raise FatalError(
            f"stats --db {redact(url)!r}: the URL names no database; give production's (or a "
            "replica's), e.g. postgres://reader@db.internal:5432/shop."
        )
    return name


def take(server: Server, database: str) -> dict[str, Any]:
    """The stats of ``database`` on ``server``, as the JSON object :data:`FORMAT` describes."""
    options = dict(server.options)
    flags = (f"-c default_transaction_read_only=on -c statement_timeout={STATEMENT_TIMEOUT} "
             "-c lock_timeout=2s")
    options["options"] = f"{options.get('options', '')} {flags}".strip()
    reader = Server(host=server.host, port=server.port, user=server.user,
                    password=server.password, options=options)
    try:
        conn = connect(reader, database)
    except driver_errors() as exc:
        raise FatalError(
            f"stats: cannot connect to {database!r} at {server.describe()}: {one_line(exc)}. "
            "Check the URL, that the server runs, and that the role may CONNECT."
        ) from None
    try:
        cur = conn.cursor()
        cur.execute("SHOW server_version_num")
        version_num = int(cur.fetchone()[0])
        cur.execute("SHOW server_version")
        version = str(cur.fetchone()[0])
        settings = {}
        for name in SETTINGS:
            cur.execute("SELECT current_setting(%s, true)", (name,))
            settings[name] = cur.fetchone()[0]
        cur.execute(_TABLES)
        tables: dict[str, dict[str, Any]] = {}
        for schema, name, kind, reltuples, live, heap, toast, index_bytes in cur.fetchall():
            rows = int(reltuples) if reltuples is not None and reltuples >= 0 else None
            if rows is None and live is not None:
                rows = int(live)  # never analysed: the statistics collector's live count
            tables[f"{schema}.{name}"] = {
                "schema": schema, "name": name, "kind": kind, "rows": rows,
                "heap_bytes": int(heap), "toast_bytes": int(toast),
                "index_bytes": int(index_bytes), "indexes": {},
            }
        cur.execute(_INDEXES)
        for schema, table, name, size, unique in cur.fetchall():
            entry = tables.get(f"{schema}.{table}")
            if entry is not None:
                entry["indexes"][name] = {"bytes": int(size), "unique": bool(unique)}
    except driver_errors() as exc:
        raise FatalError(
            f"stats: reading the catalogs of {database!r} at {server.describe()} failed: "
            f"{one_line(exc)}."
        ) from None
    finally:
        conn.close()
    return {
        "format": FORMAT, "version": VERSION,
        "taken_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "database": database,
        "server": {"version": version, "version_num": version_num, "settings": settings},
        "tables": tables,
    }


def command(url: str, output: str | None) -> int:
    """``migration-guard stats --db URL [--output FILE]``: the file, or stdout."""
    server = parse_url(url)
    taken = take(server, database_of(url))
    text = json.dumps(taken, indent=1, sort_keys=True) + "\n"
    if output is None or output == "-":
        print(text, end="")
        return 0
    try:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise FatalError(f"stats --output {output}: cannot write it: {exc.strerror}.") from None
    big = sum(1 for t in taken["tables"].values() if (t["rows"] or 0) >= 1_000_000)
    print(f"migration-guard: wrote {output}: {len(taken['tables'])} table(s) of "
          f"{taken['database']} ({big} of a million rows or more), PostgreSQL "
          f"{taken['server']['version']}", file=sys.stderr)
    return 0
