"""Each finding's blocking time at production size: production's sizes over this server's speed.

The kind of work comes from the finding: a ``rewrite`` writes the table's heap, TOAST and
indexes again (bytes over the measured rewrite rate); a ``blocking-index`` (or an index rebuilt
alone) sorts the table's rows (rows over the rate of its key's kind, a string in it or not, times
``log n / log n₀`` for the sort);
a ``scan`` reads the heap (bytes over the scan rate), and a foreign key's validation reads both
tables (rows of both over the foreign-key rate); a ``lock`` held through other work lasts as
long as that work: the step's findings on the other tables, or where there are none (a
``RunPython`` or ``RunSQL`` over the rows), a write of each row of the tables it touched.

Sizes come from the stats file; a table it does not know (the branch creates it, or it is newer
than the stats) is taken at the size it has here, and the basis says so. ``speed_factor`` divides
every time (production's disks N times this server's). An estimate is a range, :data:`SPREAD`
either side of the middle; it assumes this server's hardware (unless ``speed_factor``), no wait
for the lock and no concurrent load, and says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from guard.safety.calibration import Rates
from guard.safety.statsfile import Stats, TableSize
from guard.types import Estimate, Finding

SPREAD = 1.5
"""The range is the middle divided and multiplied by this: 2.25x wide."""
ASSUMES = "same hardware as this server, no wait for the lock, no concurrent load"
_REFERENCES = re.compile(r'REFERENCES\s+"?(?:\w+"?\."?)?(\w+)"?', re.IGNORECASE)


def size(count: float) -> str:
    """``41.2M``: rows for people."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= limit:
            return f"{count / limit:.1f}{suffix}"
    return f"{count:.0f}"


def volume(count: float) -> str:
    """``18.3 GB``: bytes for people."""
    for limit, suffix in ((2**40, "TB"), (2**30, "GB"), (2**20, "MB"), (2**10, "kB")):
        if count >= limit:
            return f"{count / limit:.1f} {suffix}"
    return f"{count:.0f} B"


def duration(seconds: float) -> str:
    """``3.2 s``, ``4 min``, ``1.5 h``."""
    if seconds < 0.1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:  # three digits: a range's end must not read as under a budget it is over
        return f"{seconds:.3g} s"
    if seconds < 100:
        return f"{seconds:.1f} s"
    if seconds < 6000:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def span(seconds: tuple[float, float]) -> str:
    """``about 3-5 min``."""
    low, high = seconds
    left, right = duration(low), duration(high)
    if left.split()[-1] == right.split()[-1]:
        left = left.rsplit(" ", 1)[0]
    return f"about {left}-{right}"


@dataclass
class Estimator:
    stats: Stats
    rates: Rates
    speed_factor: float = 1.0

    def estimate_all(self, findings: Sequence[Finding], connection: Any) -> None:
        """Give each of one step's findings its estimate (``connection``: the test database,
        for the sizes of tables the stats do not know)."""
        if not findings:
            return
        wanted = {name for f in findings for name in _tables(f) if self.stats.find(name) is None}
        wanted |= {t for f in findings if f.kind == "lock" for t in _touched(f) or [f.table]
                   if self.stats.find(t) is None}
        here = _test_sizes(connection, wanted)
        strings = _string_keys(connection, findings)
        for finding in findings:
            if finding.kind != "lock":
                finding.estimate = self._estimate(finding, here, strings.get(finding.detail))
        for finding in findings:
            if finding.kind == "lock":
                finding.estimate = self._held(finding, findings, here)

    def _sizes(self, table: str, here: dict[str, TableSize]) -> tuple[TableSize, bool]:
        """Production's sizes of ``table``, and True; else its sizes here, and False."""
        known = self.stats.find(table)
        if known is not None:
            return known, True
        return here.get(table) or TableSize(rows=0, heap_bytes=0, toast_bytes=0,
                                            index_bytes=0, indexes=0), False

    def _made(self, middle: float, rows: int | None, size: int | None, what: str,
              rate: str, known: bool, table: str, blocks: str) -> Estimate:
        middle /= self.speed_factor
        seconds = (middle / SPREAD, middle * SPREAD)
        factor = (f" with production {self.speed_factor:g}x as fast"
                  if self.speed_factor != 1 else "")
        where = ("" if known else
                 f"; {table} is not in {self.stats.path.name}: taken at its size here")
        summary = (f"{what}: {span(seconds)} of blocked {blocks} at this server's measured "
                   f"{rate}{factor}{where}")
        assumes = ASSUMES if self.speed_factor == 1 else ASSUMES.split(", ", 1)[1]
        return Estimate(seconds=seconds, rows=rows, bytes=size, blocks=blocks,
                        summary=summary, basis=f"{summary}; assumes {assumes}")

    def _estimate(self, finding: Finding, here: dict[str, TableSize],
                  strings: bool | None) -> Estimate:
        """A rewrite, index build or scan; ``strings``: whether the index built has a string
        in its key (None: not known)."""
        table, rates = finding.table, self.rates
        sizes, known = self._sizes(table, here)
        rows = sizes.rows or 0
        blocks = _blocks(finding)
        if finding.kind == "rewrite" and not finding.detail.startswith("rebuilt index"):
            total = sizes.total_bytes
            return self._made(total / rates.rewrite_bytes, sizes.rows, total,
                              f"rewrites {table} ({size(rows)} rows, {volume(total)} with "
                              "indexes)", f"{volume(rates.rewrite_bytes)}/s", known, table,
                              blocks)
        if finding.kind in ("rewrite", "blocking-index"):
            scale = math.log2(max(rows, 2)) / math.log2(rates.rows)
            rate, key = rates.index_rows, ""
            if strings is not None:
                rate = rates.index_string_rows if strings else rates.index_number_rows
                key = "string " if strings else "number "
            return self._made(rows / rate * max(scale, 0.0), sizes.rows, sizes.heap_bytes,
                              f"builds an index on {table} ({size(rows)} rows, "
                              f"{volume(sizes.heap_bytes)})",
                              f"{size(rate)} rows/s" + (f" for a {key}key" if key else ""),
                              known, table, blocks)
        # A finding merges its statements: each validating scan reads the heap, each foreign
        # key reads both tables.
        statements = [st for st in finding.statement.split(";\n") if st.strip()] or [""]
        parents = [_REFERENCES.search(st) for st in statements
                   if "FOREIGN KEY" in st.upper()]
        scans = len(statements) - len(parents)
        middle, size_bytes, every_known = 0.0, 0, known
        what: list[str] = []
        said: list[str] = []
        if scans:
            middle += scans * sizes.heap_bytes / rates.scan_bytes
            size_bytes += sizes.heap_bytes
            what.append(f"scans {table} ({size(rows)} rows, {volume(sizes.heap_bytes)})"
                        + (f" {scans} times" if scans > 1 else ""))
            said.append(f"{volume(rates.scan_bytes)}/s")
        for found in parents:
            parent = found.group(1) if found else table
            other, other_known = self._sizes(parent, here)
            middle += (rows + (other.rows or 0)) / rates.fk_rows
            size_bytes += other.heap_bytes
            every_known = every_known and other_known
            what.append(f"validates {table}'s foreign key against {parent} "
                        f"({size(rows)} + {size(other.rows or 0)} rows)")
            said.append(f"{size(rates.fk_rows)} rows/s")
        return self._made(middle, sizes.rows, size_bytes, " and ".join(what),
                          " and ".join(dict.fromkeys(said)), every_known, table, blocks)

    def _held(self, lock: Finding, findings: Sequence[Finding],
              here: dict[str, TableSize]) -> Estimate:
        blocks = _blocks(lock)
        through = [f for f in findings if f.kind != "lock" and f.table != lock.table
                   and f.estimate is not None]
        if through:
            low = sum(f.estimate.seconds[0] for f in through if f.estimate)
            high = sum(f.estimate.seconds[1] for f in through if f.estimate)
            tables = ", ".join(dict.fromkeys(f.table for f in through))
            summary = (f"holds {lock.lock_mode} on {lock.table} through the work on {tables}: "
                       f"{span((low, high))} of blocked {blocks}, their estimates added")
            return Estimate(seconds=(low, high), rows=None, bytes=None, blocks=blocks,
                            summary=summary, basis=f"{summary}; assumes {ASSUMES}")
        # Through a RunPython or RunSQL: the data work is taken to write each row of the
        # tables it touched once, as an UPDATE of every row does (a new version of each row,
        # its indexes updated): a rewrite's bytes over the rewrite rate. Its time on the test
        # rows is mostly the call's fixed cost and would not scale.
        touched = _touched(lock) or [lock.table]
        total = rows = 0
        for table in touched:
            sizes, _ = self._sizes(table, here)
            total, rows = total + sizes.total_bytes, rows + (sizes.rows or 0)
        middle = max(total / self.rates.rewrite_bytes, lock.seconds) / self.speed_factor
        seconds = (middle / SPREAD, middle * SPREAD)
        summary = (f"holds {lock.lock_mode} on {lock.table} through slow work over "
                   f"{', '.join(touched)} ({size(rows)} rows, {volume(total)} with indexes): "
                   f"{span(seconds)} of blocked {blocks}, as a write of each row at this "
                   f"server's measured {volume(self.rates.rewrite_bytes)}/s")
        return Estimate(seconds=seconds, rows=rows, bytes=total, blocks=blocks, summary=summary,
                        basis=f"{summary}; assumes the work writes each row of those tables "
                              f"once (as an UPDATE of every row does), {ASSUMES}")


def _blocks(finding: Finding) -> str:
    """What the finding's lock blocks: ACCESS EXCLUSIVE reads too, the others writes."""
    return "reads and writes" if finding.lock_mode == "ACCESS EXCLUSIVE" else "writes"


_OVER = re.compile(r"\bover ([\w, ]+?)(?::| \()")


def _touched(lock: Finding) -> list[str]:
    """The tables the held-through operations read or wrote rows of, from the lock's detail
    (``... through operation 2 (RunPython over orders_order: 0.13 s)``)."""
    found: dict[str, None] = {}
    for match in _OVER.finditer(lock.detail):
        found.update(dict.fromkeys(
            t.strip() for t in match.group(1).split(",")
            if t.strip() and not t.strip().startswith(("pg_", "information_schema"))))
    return list(found)


def _tables(finding: Finding) -> list[str]:
    """The tables whose sizes the finding's estimate needs: its own, and for a scan the
    tables its foreign keys reference."""
    if finding.kind != "scan":
        return [finding.table]
    return [finding.table, *(m.group(1) for m in _REFERENCES.finditer(finding.statement))]


def _test_sizes(connection: Any, tables: set[str]) -> dict[str, TableSize]:
    """The tables' sizes in the test database: their rows counted, their relations sized."""
    found: dict[str, TableSize] = {}
    if not tables:
        return found
    with connection.cursor() as cursor:
        for table in sorted(tables):
            cursor.execute(
                "SELECT c.oid, pg_relation_size(c.oid), "
                "COALESCE(pg_relation_size(NULLIF(c.reltoastrelid, 0)), 0), "
                "pg_indexes_size(c.oid), (SELECT count(*) FROM pg_index WHERE indrelid = c.oid) "
                "FROM pg_class c WHERE c.oid = to_regclass(%s)", [_quoted(table)])
            row = cursor.fetchone()
            if row is None or row[0] is None:
                continue
            cursor.execute(f"SELECT count(*) FROM {_quoted(table)}")
            rows = int(cursor.fetchone()[0])
            found[table] = TableSize(rows=rows, heap_bytes=int(row[1]), toast_bytes=int(row[2]),
                                     index_bytes=int(row[3]), indexes=int(row[4]))
    return found


_INDEX = re.compile(r"\bindex (\S+) (?:on|of) ")


def _string_keys(connection: Any, findings: Sequence[Finding]) -> dict[str, bool]:
    """Whether the key of each index the findings build holds a string (``typcategory`` S),
    read from the test database where the index is; unknown ones are left out."""
    found: dict[str, bool] = {}
    named = {f.detail: m.group(1) for f in findings
             if f.kind in ("rewrite", "blocking-index") and (m := _INDEX.search(f.detail))}
    if not named:
        return found
    with connection.cursor() as cursor:
        for detail, index in named.items():
            cursor.execute(
                "SELECT bool_or(t.typcategory = 'S') FROM pg_index i "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "JOIN pg_type t ON t.oid = a.atttypid WHERE i.indexrelid = to_regclass(%s)",
                [_quoted(index)])
            row = cursor.fetchone()
            if row is not None and row[0] is not None:
                found[detail] = bool(row[0])
    return found


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
