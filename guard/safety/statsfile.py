"""A stats file read back (``check --stats FILE``): checked whole before any database work.

What is not a stats file (missing, not JSON, truncated, another format or a newer version of it)
and one taken on another major version of PostgreSQL than the server the run tests on (locks and
rewrites differ between majors, and so does their speed) are exit 2 naming the file. A file older
than ``max_stats_age_days``, or with no table in common with the tested database (another
project's), gives a note: its estimates still say what they rest on.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.errors import FatalError
from guard.safety.stats import FORMAT, VERSION


@dataclass(frozen=True)
class TableSize:
    rows: int | None
    heap_bytes: int
    toast_bytes: int
    index_bytes: int
    indexes: int

    @property
    def total_bytes(self) -> int:
        return self.heap_bytes + self.toast_bytes + self.index_bytes


@dataclass
class Stats:
    path: Path
    taken_at: datetime.datetime | None
    database: str
    version: str
    version_num: int
    tables: dict[str, TableSize] = field(default_factory=dict)
    """By ``schema.name``."""

    def find(self, table: str) -> TableSize | None:
        """The table named as findings name it (no schema): ``public.`` first, then any
        schema where the name is unique."""
        if "." in table and table in self.tables:
            return self.tables[table]
        if f"public.{table}" in self.tables:
            return self.tables[f"public.{table}"]
        found = [size for key, size in self.tables.items() if key.split(".", 1)[1] == table]
        return found[0] if len(found) == 1 else None

    def age_days(self, now: datetime.datetime | None = None) -> float | None:
        if self.taken_at is None:
            return None
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return (now - self.taken_at).total_seconds() / 86400


def _bad(path: Path, why: str) -> FatalError:
    return FatalError(
        f"--stats {path}: {why}. Make one with `migration-guard stats --db URL --output {path}` "
        "against production or a replica."
    )


def load(path: Path) -> Stats:
    """The stats file at ``path``, or exit 2 saying what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _bad(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(path, f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(path, f"is not JSON (truncated?): {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _bad(path, "is not a migration-guard stats file (no \"format\": "
                         f"\"{FORMAT}\" in it)")
    if not isinstance(data.get("version"), int) or data["version"] > VERSION:
        raise _bad(path, f"is a stats file of format version {data.get('version')!r}, which "
                         f"this migration-guard (format {VERSION}) does not know: upgrade it")
    try:
        return _parsed(path, data)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(path, f"is a damaged stats file ({type(exc).__name__}: {exc})") from None


def _parsed(path: Path, data: dict[str, Any]) -> Stats:
    taken = data.get("taken_at")
    taken_at = datetime.datetime.fromisoformat(taken) if isinstance(taken, str) else None
    if taken_at is not None and taken_at.tzinfo is None:
        taken_at = taken_at.replace(tzinfo=datetime.timezone.utc)
    server = data["server"]
    stats = Stats(path=path, taken_at=taken_at, database=str(data.get("database", "?")),
                  version=str(server["version"]), version_num=int(server["version_num"]))
    for key, table in dict(data["tables"]).items():
        rows = table.get("rows")
        stats.tables[str(key)] = TableSize(
            rows=int(rows) if rows is not None else None,
            heap_bytes=int(table["heap_bytes"]), toast_bytes=int(table.get("toast_bytes", 0)),
            index_bytes=int(table.get("index_bytes", 0)),
            indexes=len(table.get("indexes", {})),
        )
    return stats


def check_server(stats: Stats, version_num: int, version: str) -> None:
    """Exit 2 when the stats come from another major version than the tested server."""
    if stats.version_num // 10000 != version_num // 10000:
        raise FatalError(
            f"--stats {stats.path}: taken on PostgreSQL {stats.version_num // 10000} "
            f"(server_version_num {stats.version_num}), but the run tests on PostgreSQL "
            f"{version_num // 10000} ({version}): locks, rewrites and their speed differ "
            f"between major versions, so its estimates would not hold. Test on a server of "
            f"production's major version ({stats.version_num // 10000}) with --db, or take the "
            "stats again."
        )


def notes(stats: Stats, tables: set[str], max_age_days: float) -> list[str]:
    """What the run's output says about the file: its age, and whether it knows the project."""
    found = []
    age = stats.age_days()
    if age is not None and age > max_age_days:
        found.append(f"stats: {stats.path} was taken {age:.0f} days ago "
                     f"(max_stats_age_days = {max_age_days:g}): sizes may have grown since")
    known = {key.split(".", 1)[1] for key in stats.tables}
    if tables and not (tables & known):
        found.append(f"stats: {stats.path} ({stats.database}) has none of this project's "
                     f"{len(tables)} table(s): is it another project's? Every estimate uses "
                     "the sizes the migrations give the tables")
    return found
