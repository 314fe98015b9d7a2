"""Portable copies of cached bases: a folder that outlives the server (``--cache-dir``).

A CI job starts with an empty server every time, so the template databases of
:mod:`guard.database.cache` are gone with it. With a cache folder, every base made is also
written there, and a server that lacks a base restores it from there instead of replaying its
history; ``actions/cache`` (GitHub) or ``cache:`` (GitLab) on the folder carries it from one job
to the next. For each base, two files:

- ``<name>.dump``: ``pg_dump --format=custom`` of the database, written before the database is
  renamed into place (a dump holds a connection, which would stop another run's clone);
- ``<name>.json``: what the template's comment keeps (stage, environment, migrations, rows),
  the server's version, the dump's size and SHA-256.

A copy is only trusted whole: a wrong checksum, a server of another version, a ``pg_restore``
that fails, and it is ignored with a note (and the base replayed). ``pg_dump`` and
``pg_restore`` must be at least the server's major version; without them the folder is not used
and the note says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from guard.database.binaries import default_candidates
from guard.database.server import Server

FORMAT = 1
TIMEOUT = 1800.0
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?")


def major(version: str) -> int:
    """``15`` from ``15.20 (Debian 15.20-0+deb12u1)`` or ``pg_dump (PostgreSQL) 15.20``."""
    found = _VERSION.search(version.split("(PostgreSQL)", 1)[-1])
    return int(found.group(1)) if found else 0


def _tool_major(program: Path) -> int:
    try:
        done = subprocess.run([str(program), "--version"], capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    return major(done.stdout) if done.returncode == 0 else 0


def _folders() -> Iterator[Path]:
    yield from default_candidates()
    found = shutil.which("pg_dump")
    if found:
        yield Path(found).resolve().parent


def find_tools(server_major: int) -> tuple[Path, Path] | str:
    """``pg_dump`` and ``pg_restore`` of the server's major version (else the oldest newer
    one), or why there are none."""
    seen: dict[Path, int] = {}
    for folder in _folders():
        if folder in seen or not (folder / "pg_dump").exists() \
                or not (folder / "pg_restore").exists():
            continue
        seen[folder] = _tool_major(folder / "pg_dump")
    usable = sorted((version, str(folder)) for folder, version in seen.items()
                    if version >= server_major)
    if not usable:
        found = ", ".join(f"{v} in {f}" for f, v in seen.items()) or "none"
        return (f"no pg_dump and pg_restore of PostgreSQL {server_major} or newer here (found: "
                f"{found}); install the client of the server's version")
    folder = Path(usable[0][1])
    return folder / "pg_dump", folder / "pg_restore"


def _conninfo(server: Server, dbname: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for ``dbname``, and the environment with the password."""
    params = {k: v for k, v in server.params(dbname).items() if k != "password"}
    text = " ".join(
        f"{key}='{str(value).replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}'"
        for key, value in params.items())
    env = dict(os.environ)
    if server.password:
        env["PGPASSWORD"] = server.password
    return text, env


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Folder:
    """The cache folder, for one server: what it holds, saving to it, restoring from it."""

    def __init__(self, path: Path, server: Server, server_version: str) -> None:
        self.path = path
        self.server = server
        self.server_version = server_version
        self.notes: list[str] = []
        self._tools: tuple[Path, Path] | str | None = None

    def _programs(self) -> tuple[Path, Path] | None:
        if self._tools is None:
            self._tools = find_tools(major(self.server_version))
            if isinstance(self._tools, str):
                self.notes.append(f"cache folder {self.path} not used: {self._tools}")
        return None if isinstance(self._tools, str) else self._tools

    def _meta_path(self, name: str) -> Path:
        return self.path / f"{name}.json"

    def meta(self, name: str, *, note: bool = False) -> dict[str, Any] | None:
        """What the folder keeps of ``name`` if its copy is there and made on this server's
        version; None otherwise (a foreign or half-written copy is never trusted; ``note``
        says so)."""
        if not self._meta_path(name).exists():
            return None
        try:
            meta = json.loads(self._meta_path(name).read_text())
            size = (self.path / f"{name}.dump").stat().st_size
        except (OSError, ValueError):
            meta, size = None, -1
        if (not isinstance(meta, dict) or meta.get("format") != FORMAT
                or meta.get("server_version") != self.server_version
                or meta.get("size") != size or not isinstance(meta.get("comment"), dict)):
            if note:
                made = meta.get("server_version") if isinstance(meta, dict) else None
                self.notes.append(
                    f"cache folder: the copy of {name} is incomplete or foreign (made on "
                    f"server {made or 'unknown'}, this one is {self.server_version}): ignored")
            return None
        return meta

    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        """The copies made on this server's version, with what their templates' comments held."""
        if not self.path.is_dir():
            return []
        found = []
        for item in sorted(self.path.glob("*.json")):
            meta = self.meta(item.stem)
            if meta is not None:
                found.append((item.stem, meta["comment"]))
        return found

    def save(self, name: str, dbname: str, comment: dict[str, Any]) -> None:
        """Write the copy of ``dbname`` as ``name``'s; a failure is a note, never an error."""
        programs = self._programs()
        if programs is None:
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.notes.append(f"cache folder {self.path}: cannot create it: {exc}")
            return
        dump = self.path / f"{name}.dump"
        partial = self.path / f".{name}.{os.getpid()}.partial"
        conninfo, env = _conninfo(self.server, dbname)
        try:
            done = subprocess.run(
                [str(programs[0]), "--format=custom", "--compress=1", "--no-owner",
                 f"--file={partial}", f"--dbname={conninfo}"],
                capture_output=True, text=True, env=env, timeout=TIMEOUT,
                stdin=subprocess.DEVNULL, check=False)
            if done.returncode != 0:
                self.notes.append(f"cache folder: pg_dump of {name} failed: "
                                  f"{' '.join(done.stderr.split())[:300]}")
                return
            meta = {"format": FORMAT, "server_version": self.server_version,
                    "size": partial.stat().st_size, "sha256": _digest(partial),
                    "comment": {k: v for k, v in comment.items() if k != "pid"},
                    "saved": time.time()}
            os.replace(partial, dump)
            self._meta_path(name).write_text(json.dumps(meta))
        except (OSError, subprocess.SubprocessError) as exc:
            self.notes.append(f"cache folder: cannot keep {name} there: {exc}")
        finally:
            with contextlib.suppress(OSError):
                partial.unlink()

    def restore(self, name: str, dbname: str) -> dict[str, Any] | None:
        """Fill the empty database ``dbname`` from ``name``'s copy; its template's comment, or
        None (with a note) if the copy is missing, foreign, corrupt or fails to restore."""
        meta = self.meta(name, note=True)
        programs = self._programs() if meta is not None else None
        if meta is None or programs is None:
            return None
        dump = self.path / f"{name}.dump"
        try:
            if _digest(dump) != meta.get("sha256"):
                self.notes.append(f"cache folder: {dump.name} does not match its checksum: "
                                  "ignored, the base is replayed")
                return None
            conninfo, env = _conninfo(self.server, dbname)
            done = subprocess.run(
                [str(programs[1]), "--no-owner", "--exit-on-error", "--single-transaction",
                 f"--dbname={conninfo}", str(dump)],
                capture_output=True, text=True, env=env, timeout=TIMEOUT,
                stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            self.notes.append(f"cache folder: cannot restore {name}: {exc}")
            return None
        if done.returncode != 0:
            self.notes.append(f"cache folder: pg_restore of {dump.name} failed, the base is "
                              f"replayed: {' '.join(done.stderr.split())[:300]}")
            return None
        with contextlib.suppress(OSError):
            os.utime(self._meta_path(name))
        comment = meta["comment"]
        return comment if isinstance(comment, dict) else None

    def evict(self, keep: int, protect: tuple[str, ...]) -> None:
        """Keep the ``keep`` most recently used copies of each stage (and ``protect``)."""
        stages: dict[str, list[tuple[float, str]]] = {}
        for name, comment in self.entries():
            with contextlib.suppress(OSError):
                used = self._meta_path(name).stat().st_mtime
                stages.setdefault(str(comment.get("stage", "")), []).append((used, name))
        for copies in stages.values():
            copies.sort(reverse=True)
            for _, name in copies[keep:]:
                if name not in protect:
                    for suffix in (".json", ".dump"):
                        with contextlib.suppress(OSError):
                            (self.path / f"{name}{suffix}").unlink()
