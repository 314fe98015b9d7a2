"""Finding the PostgreSQL server binaries on this machine.

:func:`find_binaries` looks for a folder that holds ``initdb``, ``pg_ctl`` and ``postgres``
together: an explicit setting, else the folders of :func:`default_candidates` (``pg_config``,
the usual Linux, Homebrew and Postgres.app folders, ``initdb`` on PATH, and last the optional
``pgserver`` package). :func:`missing_binaries_error` says where it looked when nothing is found;
:func:`postgres_major` says which major version a folder holds.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from guard.errors import FatalError

REQUIRED = ("initdb", "pg_ctl", "postgres")
"""The programs a folder must hold, all three, to count as PostgreSQL binaries."""
VERSION_TIMEOUT = 30.0
"""For ``postgres --version``."""

EMBEDDED_HINT = 'pip install "migration-guard[embedded]"'

SEARCHED_PATTERNS = (
    "pg_config --bindir",
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/opt/homebrew/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
    "the folder of initdb on PATH",
    "the pgserver package",
)


# --------------------------------------------------------------------------- binaries


def has_binaries(folder: Path) -> bool:
    """True if ``folder`` holds ``initdb``, ``pg_ctl`` and ``postgres`` as executables."""
    if not folder.is_dir():
        return False
    return all(shutil.which(name, path=str(folder)) is not None for name in REQUIRED)


def _version_key(name: str) -> tuple[int, ...]:
    """``"15"`` -> (15,), ``"9.6"`` -> (9, 6); names that are not versions sort last."""
    digits = name.split("@")[-1].split("-")[-1]
    parts: list[int] = []
    for part in digits.split("."):
        if not part.isdigit():
            return (-1,)
        parts.append(int(part))
    return tuple(parts) if parts else (-1,)


def _versioned(parent: Path, prefix: str, suffix: str = "bin") -> list[Path]:
    """``parent/<prefix><version>/<suffix>`` for every version present, newest first."""
    try:
        entries = [entry for entry in parent.iterdir() if entry.name.startswith(prefix)]
    except OSError:
        return []
    entries.sort(key=lambda entry: _version_key(entry.name[len(prefix) :]), reverse=True)
    return [entry / suffix for entry in entries]


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        done = subprocess.run(
            [pg_config, "--bindir"],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.strip()
    return Path(text) if done.returncode == 0 and text else None


def _path_candidates() -> list[Path]:
    """The folder of ``initdb`` on PATH: where its symlinks lead first, then the folder itself."""
    initdb = shutil.which("initdb")
    if initdb is None:
        return []
    found = Path(initdb)
    return [found.resolve().parent, found.parent]


def pgserver_bindir() -> Path | None:
    """The binaries inside the optional ``pgserver`` package, located without starting anything."""
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "pginstall" / "bin"
        if has_binaries(folder):
            return folder
    return None


def default_candidates() -> Iterator[Path]:
    """Every folder :func:`find_binaries` tries after an explicit setting, in its order."""
    pg_config = _pg_config_bindir()
    if pg_config is not None:
        yield pg_config
    yield from _versioned(Path("/usr/lib/postgresql"), "")
    yield from _versioned(Path("/usr"), "pgsql-")
    yield from _versioned(Path("/opt/homebrew/opt"), "postgresql@")
    yield from _versioned(Path("/usr/local/opt"), "postgresql@")
    yield Path("/opt/homebrew/bin")
    yield from _versioned(Path("/Applications/Postgres.app/Contents/Versions"), "")
    yield from _path_candidates()
    pgserver = pgserver_bindir()
    if pgserver is not None:
        yield pgserver


def find_binaries(
    explicit: str | os.PathLike[str] | None = None,
    *,
    candidates: Iterable[Path] | None = None,
) -> Path | None:
    """The first folder holding ``initdb``, ``pg_ctl`` and ``postgres``, else None.

    An ``explicit`` folder (a setting the user gave) is the only one tried: a wrong setting is
    reported, never silently replaced by another PostgreSQL. Otherwise ``candidates`` are tried,
    by default :func:`default_candidates`: ``pg_config --bindir``, the usual Linux, Homebrew and
    Postgres.app folders newest version first, the folder of ``initdb`` on PATH, and last the
    binaries of the optional ``pgserver`` package.
    """
    if explicit is not None:
        folder = Path(explicit).expanduser().absolute()
        return folder if has_binaries(folder) else None
    for folder in default_candidates() if candidates is None else candidates:
        if has_binaries(folder):
            return folder.absolute()
    return None


def missing_binaries_error(explicit: Path | None, candidates: Sequence[Path] | None) -> FatalError:
    if explicit is not None:
        return FatalError(
            f"The PostgreSQL binaries folder {explicit} does not hold initdb, pg_ctl and "
            "postgres together. Point the setting at the bin folder of a PostgreSQL server "
            f"installation (e.g. /usr/lib/postgresql/15/bin), or leave it unset to search."
        )
    where = (
        ", ".join(str(c) for c in candidates)
        if candidates is not None
        else (", ".join(SEARCHED_PATTERNS))
    )
    return FatalError(
        "No PostgreSQL server binaries (initdb, pg_ctl and postgres in one folder) were found; "
        f"looked in: {where}. Install the PostgreSQL server (e.g. apt-get install postgresql, "
        f"brew install postgresql@16), or {EMBEDDED_HINT}, or use --db with a URL or docker."
    )


def postgres_major(bindir: Path) -> str:
    """The major version of the PostgreSQL in ``bindir`` (``"15"``, ``"9.6"``), from ``-V``."""
    program = bindir / "postgres"
    try:
        done = subprocess.run(
            [str(program), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise FatalError(f"Cannot run {program} --version: {exc}.") from exc
    found = re.search(r"\)\s*(\d+)(?:\.(\d+))?", done.stdout)
    if done.returncode != 0 or found is None:
        output = " ".join((done.stdout + done.stderr).split()) or "no output"
        raise FatalError(
            f"{program} --version did not say which PostgreSQL it is (exit code "
            f"{done.returncode}: {output}). Point the setting at a PostgreSQL bin folder."
        )
    major, minor = found.groups()
    return major if int(major) >= 10 or minor is None else f"{major}.{minor}"
