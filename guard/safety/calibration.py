"""How fast this server does each kind of blocking work, measured once per server version.

An estimate scales a measured rate by production's sizes, so the rates must come from doing the
same work here: in a database of its own (``migration_guard_cache_calibration``, a cache like a
base: ``migration-guard clean`` drops it) a table of :data:`ROWS` rows (a bigint key, an integer,
a 33-character string, a timestamp and a reference to a second table), vacuumed and analysed as
a live table is, then timed, each as a migration sends it:

- ``scan``: ``SET NOT NULL`` on the integer, which reads the whole heap (bytes per second);
- ``index``: ``CREATE INDEX`` on the integer and on the string (rows per second of each: an
  index with a string in its key sorts about twice as slowly);
- ``fk``: ``ADD FOREIGN KEY`` on the reference, validated against the second table (rows of both
  per second);
- ``rewrite``: ``ALTER COLUMN ... TYPE bigint``, which writes the heap and rebuilds every index
  (bytes of heap, TOAST and indexes per second).

Each is timed twice (undone in between) and the faster kept. The rates are kept in the
database's comment with the server's version; a server of another
version measures again. Runs that calibrate at once wait on an advisory lock, then read what the
first one measured.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from guard.database import cache, throwaway
from guard.database.server import Server, connect, connect_maintenance, quote_ident

NAME = f"{cache.CACHE_PREFIX}calibration"
FORMAT = 3
ROWS = 400_000
PARENT_ROWS = 20_000


@dataclass(frozen=True)
class Rates:
    scan_bytes: float
    """Heap bytes read per second by a validating scan (SET NOT NULL, CHECK)."""
    index_rows: float
    """Rows per second of a CREATE INDEX (of ``rows`` rows): the geometric mean of the two
    below, for an index whose key types are not known."""
    index_number_rows: float
    """... of an index on an integer (numbers, dates, booleans sort alike)."""
    index_string_rows: float
    """... of an index on a string (collation-aware comparisons: about twice as slow)."""
    fk_rows: float
    """Rows (referencing plus referenced) per second of a foreign key's validation."""
    rewrite_bytes: float
    """Bytes (heap, TOAST and indexes) per second of a table rewrite."""
    rows: int
    """The calibration table's rows: the index build's n log n is scaled from here."""
    version: str
    version_num: int
    measured_at: float
    seconds: float = 0.0
    """How long measuring took (0: read from the cache)."""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "seconds"}


def rates(server: Server, check: Callable[[str, int], None] = lambda *_: None) -> Rates:
    """This server's rates: from the cache, or measured now (a few seconds, once); ``check``
    sees the server's version first (and may refuse it)."""
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        cur.execute("SELECT current_setting('server_version'), "
                    "current_setting('server_version_num')::int")
        version, version_num = cur.fetchone()
        check(str(version), int(version_num))
        found = _kept(cur, version)
        if found is not None:
            return found
    finally:
        conn.close()
    with cache.advisory_lock(server, NAME) as cur:
        found = _kept(cur, version)
        if found is not None:
            return found
        if not cache.exists(cur, NAME):
            throwaway.create_database(server, NAME)
        started = time.perf_counter()
        measured = _measure(server, version, int(version_num))
        kept = {"stage": "calibration", "format": FORMAT, "rates": measured.to_json()}
        cur.execute(f"COMMENT ON DATABASE {quote_ident(NAME)} IS %s", (json.dumps(kept),))
        return Rates(**{**measured.to_json(), "seconds": time.perf_counter() - started})


def _kept(cur: Any, version: str) -> Rates | None:
    kept = cache.comment(cur, NAME)
    data = kept.get("rates")
    if kept.get("format") != FORMAT or not isinstance(data, dict) or data.get("version") != version:
        return None
    try:
        return Rates(**data)
    except TypeError:
        return None


_SETUP = f"""
DROP TABLE IF EXISTS calibration_child, calibration_parent;
CREATE TABLE calibration_parent (id bigint PRIMARY KEY);
INSERT INTO calibration_parent SELECT g FROM generate_series(1, {PARENT_ROWS}) g;
CREATE TABLE calibration_child (
    id bigserial PRIMARY KEY, quantity integer, code varchar(64), stamp timestamptz,
    parent_id bigint);
INSERT INTO calibration_child (quantity, code, stamp, parent_id)
    SELECT ((g::bigint * 7919) % 1000003)::int, md5(g::text) || 'x',
           now() - g * interval '1 second', 1 + (g * 31) % {PARENT_ROWS}
    FROM generate_series(1, {ROWS}) g;
"""


def _timed(cur: Any, sql: str) -> float:
    started = time.perf_counter()
    cur.execute(sql)
    return time.perf_counter() - started


def _best(cur: Any, sql: str, undo: str) -> float:
    """The faster of two runs of ``sql`` (``undo`` between them, untimed): a moment's load on
    a shared machine must not be kept as the server's speed."""
    first = _timed(cur, sql)
    cur.execute(undo)
    return min(first, _timed(cur, sql))


def _measure(server: Server, version: str, version_num: int) -> Rates:
    conn = connect(server, NAME)
    try:
        cur = conn.cursor()
        cur.execute("SET synchronous_commit = on")
        cur.execute(_SETUP)
        cur.execute("VACUUM ANALYZE calibration_child")
        cur.execute("VACUUM ANALYZE calibration_parent")
        cur.execute("SELECT pg_relation_size('calibration_child')")
        heap = int(cur.fetchone()[0])
        scan = _best(cur, "ALTER TABLE calibration_child ALTER COLUMN quantity SET NOT NULL",
                     "ALTER TABLE calibration_child ALTER COLUMN quantity DROP NOT NULL")
        by_number = _best(cur, "CREATE INDEX calibration_quantity ON calibration_child "
                               "(quantity)", "DROP INDEX calibration_quantity")
        by_string = _best(cur, "CREATE INDEX calibration_code ON calibration_child (code)",
                          "DROP INDEX calibration_code")
        fk = _best(cur, "ALTER TABLE calibration_child ADD CONSTRAINT calibration_fk "
                        "FOREIGN KEY (parent_id) REFERENCES calibration_parent (id)",
                   "ALTER TABLE calibration_child DROP CONSTRAINT calibration_fk")
        cur.execute("SELECT pg_total_relation_size('calibration_child')")
        total = int(cur.fetchone()[0])
        rewrite = _best(cur, "ALTER TABLE calibration_child ALTER COLUMN quantity TYPE bigint",
                        "ALTER TABLE calibration_child ALTER COLUMN quantity TYPE integer")
        cur.execute("DROP TABLE calibration_child, calibration_parent")
    finally:
        conn.close()
    floor = 1e-4
    return Rates(
        scan_bytes=heap / max(scan, floor),
        index_rows=ROWS / max(math.sqrt(by_number * by_string), floor),
        index_number_rows=ROWS / max(by_number, floor),
        index_string_rows=ROWS / max(by_string, floor),
        fk_rows=(ROWS + PARENT_ROWS) / max(fk, floor),
        rewrite_bytes=total / max(rewrite, floor),
        rows=ROWS, version=version, version_num=version_num, measured_at=time.time(),
    )
