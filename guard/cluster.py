"""PostgreSQL clusters started from the PostgreSQL binaries on this machine.

:func:`find_binaries` looks for a folder that holds ``initdb``, ``pg_ctl`` and ``postgres``
together. Two kinds of cluster use them. :class:`WarmCluster`, what ``--db local`` uses, keeps its
data folder in the cache folder (:func:`cache_root`) between runs, so that a run only starts the
server and the template databases that cache migrated states survive; concurrent runs share the
server and the last one out stops it (:func:`remove_warm_clusters` is ``migration-guard clean``).
:class:`LocalCluster` is a throwaway one: it runs ``initdb`` into a folder of the caller's and
starts ``postgres`` on a unix socket in that folder only (no TCP), with the settings that suit a
database nobody keeps (``fsync=off`` and friends; the warm cluster uses them too)::

    with LocalCluster.start(base_dir) as cluster:
        use(cluster.server)

Leaving the block stops the server and removes what ``start`` created in ``base_dir``.

PostgreSQL refuses to run as root. When this process is root, ``initdb`` and ``postgres`` run as
the ``postgres`` system user if there is one, else as ``nobody`` (or as ``run_as``), and the
folders they need are handed to that user. That user must be able to reach ``base_dir``: it must
not lie under a folder that only root may enter (``/root``, or pytest's own temporary folders,
which are 0700); :meth:`LocalCluster.start` says so rather than failing obscurely. The binaries,
on the other hand, may lie out of that user's reach (the ``pgserver`` wheel in a virtualenv under
``/root``): then their installation is copied into ``base_dir`` and run from there (see
:func:`copy_installation`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from guard import database
from guard.database import Server
from guard.errors import FatalError

REQUIRED = ("initdb", "pg_ctl", "postgres")
"""The programs a folder must hold, all three, to count as PostgreSQL binaries."""

DEFAULT_PORT = 5432
"""Safe to reuse: the server listens on a socket in a private folder only."""

START_TIMEOUT = 30.0
INITDB_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
SOCKET_PATH_MAX = 100
"""A little under the 104/108 bytes macOS/Linux allow for a unix-socket path."""
LDD_TIMEOUT = 60.0

INSTALL_COPY = "pginstall"
"""The folder in ``base_dir`` that receives a copy of binaries the server's user cannot reach."""
LIBRARY_FOLDERS = ("lib", "lib64")
COPIED_FOLDERS = (*LIBRARY_FOLDERS, "share")
"""Besides the bin folder, what of an installation its programs need: libraries and data files."""

SERVER_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "wal_level=minimal",
    "max_wal_senders=0",
    "max_connections=50",
    "logging_collector=off",
)
"""What a database nobody keeps can do without: durability, replication, log files."""

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


# --------------------------------------------------------------------------- users


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account the server runs as when this process is root."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _lookup_user(name: str) -> RunAs | None:
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return RunAs(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def choose_user(run_as: str | None) -> RunAs | None:
    """Who runs ``initdb`` and ``postgres``: None means this process's own user."""
    if not is_root():
        if run_as is not None:
            import getpass

            if run_as != getpass.getuser():
                raise FatalError(
                    f"Cannot run the local PostgreSQL as {run_as!r}: switching users needs root. "
                    "Leave run_as unset to run it as yourself."
                )
        return None
    if run_as is not None:
        user = _lookup_user(run_as)
        if user is None:
            raise FatalError(
                f"Cannot run the local PostgreSQL as {run_as!r}: there is no such user on this "
                "machine. Name an existing unprivileged user, or leave run_as unset."
            )
        if user.uid == 0:
            raise FatalError(
                f"Cannot run the local PostgreSQL as {run_as!r}: PostgreSQL refuses to run as "
                "root. Name an unprivileged user, or leave run_as unset."
            )
        return user
    for name in ("postgres", "nobody"):
        user = _lookup_user(name)
        if user is not None and user.uid != 0:
            return user
    raise FatalError(
        "This process runs as root, which PostgreSQL refuses, and neither a 'postgres' nor a "
        "'nobody' user exists to run it as. Create one (useradd --system postgres), or run "
        "migration-guard as an ordinary user."
    )


def can_traverse(folder: Path, user: RunAs) -> bool:
    """Whether ``user`` (with only its primary group) may pass through ``folder``."""
    try:
        st = folder.stat()
    except OSError:
        return False
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == user.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _blocking_parent(path: Path, user: RunAs) -> Path | None:
    """The first existing folder above ``path`` that ``user`` cannot pass through, if any."""
    for parent in reversed(path.parents):
        if parent.exists() and not can_traverse(parent, user):
            return parent
    return None


# --------------------------------------------------------------------------- copying binaries


def _copy_folder(source: Path, target: Path) -> None:
    """``source`` to ``target`` with symlinks as they are (see :func:`_settle_symlinks`)."""
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("*.a"))


def _settle_symlinks(copy: Path, original: Path) -> None:
    """Replace each symlink in ``copy`` that leads nowhere inside it by what it led to.

    Relative links within the installation (``libpq.so`` -> ``libpq.so.5``) stay links; links that
    leave the copy, absolute ones to the original included, become copies of their target, read
    at the same place in ``original``. Links that led nowhere in the original stay as they are.
    """
    links = [
        Path(folder, name)
        for folder, dirnames, filenames in os.walk(copy)
        for name in (*dirnames, *filenames)
        if os.path.islink(os.path.join(folder, name))
    ]
    inside = copy.resolve()
    for link in links:
        if not os.path.lexists(link):
            continue  # inside a folder an earlier link was replaced by
        led_to = link.resolve()
        if led_to.is_relative_to(inside) and led_to.exists():
            continue
        target = (original / link.relative_to(copy)).resolve()
        if not target.exists():
            continue
        link.unlink()
        if target.is_dir():
            shutil.copytree(
                target,
                link,
                symlinks=False,
                ignore_dangling_symlinks=True,
                ignore=shutil.ignore_patterns("*.a"),
            )
        else:
            shutil.copy2(target, link)


def _make_readable(folder: Path) -> None:
    """Folders 0755, files readable by all (and executable by all if by their owner)."""
    for current, _dirnames, filenames in os.walk(folder):
        os.chmod(current, 0o755)
        for name in filenames:
            path = os.path.join(current, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                mode = (stat.S_IMODE(st.st_mode) & 0o777) | 0o444
                if mode & stat.S_IXUSR:
                    mode |= 0o111
                os.chmod(path, mode)


def _unreachable_libraries(files: Sequence[Path], user: RunAs) -> dict[str, Path]:
    """Shared libraries that ``files`` load from folders ``user`` cannot enter, by name.

    Asks ``ldd`` (as this process, which reaches everything); without ``ldd`` (macOS) the answer
    is empty and a missing library shows in initdb's output instead.
    """
    ldd = shutil.which("ldd")
    if ldd is None or not files:
        return {}
    try:
        done = subprocess.run(
            [ldd, *(str(path) for path in files)],
            capture_output=True,
            text=True,
            timeout=LDD_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, Path] = {}
    for line in done.stdout.splitlines():
        # "\tlibpq-084d956f.so.5.16 => /root/.../pgserver.libs/libpq-084d956f.so.5.16 (0x...)"
        name, arrow, rest = line.strip().partition(" => ")
        location = rest.rpartition(" (")[0].strip() if arrow else ""
        if not location.startswith("/") or name in found or "/" in name:
            continue
        path = Path(location)
        if _blocking_parent(path, user) is not None:
            found[name] = path
    return found


def library_folders(install: Path) -> list[Path]:
    """The library folders of an installation (copy), for ``LD_LIBRARY_PATH``."""
    return [install / name for name in LIBRARY_FOLDERS if (install / name).is_dir()]


def copy_installation(bindir: Path, target: Path, user: RunAs) -> Path:
    """Copy the installation of the binaries in ``bindir`` into ``target``; its bin folder.

    This is for root running the server as a user who cannot enter the folder the binaries
    are in, typically the ``pgserver`` wheel in a virtualenv under ``/root`` (0700). Nothing is
    asked of the user: a relocatable PostgreSQL (pgserver's, or any built with the default
    relative layout) finds its ``lib`` and ``share`` folders relative to where its programs
    are, so the folder holding the real bin folder is copied: that bin folder, ``lib``,
    ``lib64`` and ``share`` as far as they exist, static libraries left out. Symlinks within
    the copy stay symlinks; those leading out of it are replaced by what they lead to. A
    Debian-style installation, whose ``share`` lies elsewhere, reads it at its compiled-in
    place, which is readable by everyone.

    Shared libraries that the programs load from elsewhere out of the user's reach (pgserver
    keeps ``libpq`` in ``site-packages/pgserver.libs``, found through an ``$ORIGIN``-relative
    rpath that the copy no longer satisfies) are copied into the copy's ``lib``, and the
    programs must run with :func:`library_folders` of the copy on ``LD_LIBRARY_PATH``.
    ``target`` must not exist; it is created (0755, this process's) before anything is copied,
    and left for the caller to remove if the copy fails.
    """
    real_bin = (bindir / "postgres").resolve().parent
    if not has_binaries(real_bin):
        raise FatalError(
            f"The user {user.name!r} that runs the local PostgreSQL cannot reach "
            f"{bindir}, so its installation would be copied to {target}, but "
            f"{bindir / 'postgres'} leads to {real_bin}, which does not hold initdb, "
            "pg_ctl and postgres together. Point the setting at the real bin folder of the "
            "installation, or install PostgreSQL where that user can reach it."
        )
    root = real_bin.parent
    target.mkdir(mode=0o755)
    try:
        _copy_folder(real_bin, target / real_bin.name)
        for name in COPIED_FOLDERS:
            if name != real_bin.name and (root / name).is_dir():
                _copy_folder(root / name, target / name)
        _settle_symlinks(target, root)
        programs = [real_bin / name for name in REQUIRED]
        modules = sorted(
            path
            for name in LIBRARY_FOLDERS
            if (root / name).is_dir()
            for path in (root / name).rglob("*.so*")
            if path.is_file() and not path.is_symlink()
        )
        libraries = _unreachable_libraries([*programs, *modules], user)
        if libraries:
            (target / "lib").mkdir(mode=0o755, exist_ok=True)
        for name, path in libraries.items():
            if not os.path.lexists(target / "lib" / name):
                shutil.copy2(path, target / "lib" / name)
        _make_readable(target)
    except OSError as exc:
        raise FatalError(
            f"Could not copy the PostgreSQL installation {root} to {target}, where the user "
            f"{user.name!r} that runs the local PostgreSQL can reach it (it cannot reach "
            f"{bindir}): {exc}. Check the space and permissions there, or install "
            "PostgreSQL where that user can reach it (e.g. a virtualenv outside /root)."
        ) from exc
    return target / real_bin.name


def server_env(library_path: Sequence[Path] = ()) -> dict[str, str]:
    """The environment of initdb and postgres: ours without ``PG*``, in the C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C")
    if library_path:
        inherited = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [*(str(path) for path in library_path), *([inherited] if inherited else [])]
        )
    return env


INITDB_OPTIONS = ("--no-sync", "--no-locale", "-E", "UTF8", "--auth=trust", "-U", "postgres")
"""initdb's options besides ``-D``: a superuser ``postgres`` that the socket lets in."""


def postmaster_argv(bindir: Path, data_dir: Path, socket_dir: Path, port: int) -> list[str]:
    """The postmaster's command line: our socket folder only, no TCP, no durability."""
    argv = [
        str(bindir / "postgres"),
        "-D",
        str(data_dir),
        "-k",
        str(socket_dir),
        "-p",
        str(port),
        "-c",
        "listen_addresses=",
    ]
    for setting in SERVER_SETTINGS:
        argv += ["-c", setting]
    return argv


# --------------------------------------------------------------------------- the cluster


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) if tail else "(the server log is empty)"


class LocalCluster:
    """A PostgreSQL server of our own in ``base_dir``, reachable on a unix socket only."""

    server: Server

    def __init__(
        self,
        base_dir: Path,
        bindir: Path,
        user: RunAs | None,
        port: int = DEFAULT_PORT,
        *,
        copy_binaries: bool = False,
    ) -> None:
        self.base_dir = base_dir
        self.source_bindir = bindir
        """The binaries as found."""
        self.bindir = bindir
        """Where the programs run from: ``source_bindir``, or its copy once made."""
        self.user = user
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "socket"
        self.log_path = base_dir / "postgres.log"
        self.install_dir: Path | None = base_dir / INSTALL_COPY if copy_binaries else None
        """Where the installation is copied to, if ``user`` cannot reach ``source_bindir``."""
        self._library_path: list[Path] = []
        self.server = Server(host=str(self.socket_dir), port=port, user="postgres")
        self.process: subprocess.Popen[bytes] | None = None
        """The postmaster, once started."""
        self._running: list[subprocess.Popen[bytes]] = []
        """Every process started and not yet waited for (initdb while it runs, the postmaster)."""
        self._created: list[Path] = []
        """What ``start`` made, in order, so that leaving removes exactly that."""
        self._restore_owner: tuple[int, int] | None = None
        self._removed = False

    # ----------------------------------------------------------------- public API

    @classmethod
    def start(
        cls,
        base_dir: str | os.PathLike[str],
        *,
        bindir: str | os.PathLike[str] | None = None,
        search: Sequence[Path] | None = None,
        run_as: str | None = None,
        port: int = DEFAULT_PORT,
        timeout: float = START_TIMEOUT,
    ) -> LocalCluster:
        """Create a cluster in ``base_dir/data`` and start it; FatalError if it cannot.

        ``bindir`` is a folder of PostgreSQL binaries, the only one tried if given; else the
        folders in ``search`` are tried, by default those of :func:`default_candidates`.
        ``run_as`` names the user the server runs as when this process is root (default:
        ``postgres`` if it exists, else ``nobody``); if that user cannot reach the binaries, they
        are copied into ``base_dir/pginstall`` first. On any failure, whatever was started is
        stopped and whatever was created is removed before the error propagates.
        """
        base = Path(base_dir).expanduser().absolute()
        explicit = Path(bindir).expanduser().absolute() if bindir is not None else None
        found = find_binaries(explicit, candidates=search)
        if found is None:
            raise missing_binaries_error(explicit, search)
        user = choose_user(run_as)
        socket_file = base / "socket" / f".s.PGSQL.{port}"
        if len(os.fsencode(socket_file)) > SOCKET_PATH_MAX:
            raise FatalError(
                f"The folder {base} is too deep for the local PostgreSQL: its socket path "
                f"{socket_file} would be longer than unix sockets allow ({SOCKET_PATH_MAX} "
                "bytes). Use a shorter folder, e.g. one made by tempfile.mkdtemp()."
            )
        copy_binaries = False
        if user is not None:
            blocked = _blocking_parent(base, user)
            if blocked is not None:
                raise FatalError(
                    f"The local PostgreSQL runs as the user {user.name!r} (PostgreSQL refuses to "
                    f"run as root), and that user cannot enter {blocked}, so it cannot reach the "
                    f"folder {base}. Use a folder outside folders only root may enter (such as "
                    "/root, pytest's temporary folders or anything inside a tempfile.mkdtemp() "
                    "folder, all 0700): pass the tempfile.mkdtemp() folder itself, or make "
                    f"{blocked} traversable (chmod o+x)."
                )
            copy_binaries = _blocking_parent(found / "postgres", user) is not None
        cluster = cls(base, found, user, port, copy_binaries=copy_binaries)
        try:
            cluster._boot(timeout)
        except BaseException:
            cluster._cleanup()
            raise
        return cluster

    def stop(self) -> None:
        """Stop every process this cluster started: fast shutdown, then kill. Removes nothing."""
        for proc in list(self._running):
            self._end(proc)
            self._running.remove(proc)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        proc = self.process
        return proc.pid if proc is not None and proc.poll() is None else None

    # ----------------------------------------------------------------- internals

    def _boot(self, timeout: float) -> None:
        self._make_folders()
        if self.install_dir is not None and self.user is not None:
            self._copy_installation(self.install_dir, self.user)
        self._initdb()
        self._start_postmaster()
        self._wait_ready(timeout)

    def _make_folders(self) -> None:
        if self.base_dir.exists() and not self.base_dir.is_dir():
            raise FatalError(
                f"{self.base_dir} is not a folder: the local PostgreSQL needs a folder to live in."
            )
        made = (self.data_dir, self.socket_dir, self.log_path, self.install_dir)
        for path in (p for p in made if p is not None):
            if os.path.lexists(path):
                raise FatalError(
                    f"{path} already exists: the local PostgreSQL will not reuse or overwrite it. "
                    "Remove it (a leftover of an earlier run) or pass a new, empty base folder."
                )
        missing = [p for p in (self.base_dir, *self.base_dir.parents) if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir()
            self._created.append(folder)
            # Readable by the server's user whatever the umask; the base itself is handed over.
            os.chmod(folder, 0o700 if folder == self.base_dir else 0o755)
        for folder in (self.data_dir, self.socket_dir):
            folder.mkdir(mode=0o700)
            self._created.append(folder)
        if self.user is not None:
            if self.base_dir not in self._created:
                st = self.base_dir.stat()
                self._restore_owner = (st.st_uid, st.st_gid)
            for folder in (self.base_dir, self.data_dir, self.socket_dir):
                os.chown(folder, self.user.uid, self.user.gid)
        self._created.append(self.log_path)

    def _copy_installation(self, target: Path, user: RunAs) -> None:
        """Copy the installation into ``target`` (see :func:`copy_installation`), run from there.

        The copy belongs to root, is readable by everyone, and is removed with the rest of the
        cluster.
        """
        try:
            self.bindir = copy_installation(self.bindir, target, user)
        finally:
            if os.path.lexists(target) and target not in self._created:
                self._created.append(target)
        self._library_path = library_folders(target)

    def _program(self, name: str) -> str:
        """A program's path for messages: as found, and where it ran from if that was a copy."""
        if self.bindir == self.source_bindir:
            return str(self.bindir / name)
        return f"{self.source_bindir / name}, run from a copy in {self.bindir}"

    def _popen(self, argv: list[str], log: IO[bytes], **kwargs: Any) -> subprocess.Popen[bytes]:
        if self.user is not None:
            kwargs.update(self.user.popen_kwargs())
        env = server_env(self._library_path)
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.base_dir,
            env=env,
            **kwargs,
        )
        self._running.append(proc)
        return proc

    def _initdb(self) -> None:
        argv = [str(self.bindir / "initdb"), "-D", str(self.data_dir), *INITDB_OPTIONS]
        with self.log_path.open("ab") as log:
            proc = self._popen(argv, log)
            try:
                code = proc.wait(timeout=INITDB_TIMEOUT)
            except subprocess.TimeoutExpired:
                code = None
        if code is None:
            raise FatalError(
                f"initdb ({self._program('initdb')}) did not finish within {INITDB_TIMEOUT:.0f} s "
                f"for {self.data_dir}. Its output: {_log_tail(self.log_path)}"
            )
        self._running.remove(proc)
        if code != 0:
            raise FatalError(
                f"initdb ({self._program('initdb')}) failed with exit code {code} for "
                f"{self.data_dir}. Its output: {_log_tail(self.log_path)}"
            )

    def _start_postmaster(self) -> None:
        argv = postmaster_argv(self.bindir, self.data_dir, self.socket_dir, self.server.port)
        with self.log_path.open("ab") as log:
            self.process = self._popen(argv, log, start_new_session=True)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        socket_file = self.socket_dir / f".s.PGSQL.{self.server.port}"
        last = "the socket did not appear"
        while True:
            proc = self.process
            if proc is None or proc.poll() is not None:
                code = proc.returncode if proc is not None else None
                raise FatalError(
                    f"The local PostgreSQL ({self._program('postgres')}) exited with code {code} "
                    f"while starting in {self.data_dir}. The end of its log: "
                    f"{_log_tail(self.log_path)}"
                )
            if socket_file.exists():
                try:
                    conn = database.connect(self.server, "postgres")
                except database.driver_errors() as exc:
                    last = database.one_line(exc)
                else:
                    try:
                        cur = conn.cursor()
                        cur.execute("SELECT 1")
                        cur.fetchone()
                    finally:
                        conn.close()
                    return
            if time.monotonic() >= deadline:
                raise FatalError(
                    f"The local PostgreSQL in {self.data_dir} did not accept connections within "
                    f"{timeout:.0f} s ({last}). The end of its log: {_log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    @staticmethod
    def _end(proc: subprocess.Popen[bytes]) -> None:
        """SIGINT (a postmaster's fast shutdown), then SIGQUIT, then SIGKILL; always waits."""
        steps = ((signal.SIGINT, STOP_TIMEOUT), (getattr(signal, "SIGQUIT", None), 5.0))
        for sig, wait in steps:
            if proc.poll() is not None:
                return
            if sig is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()

    def _cleanup(self) -> None:
        """Stop everything, then remove what ``start`` created (and only that)."""
        self.stop()
        if self._removed:
            return
        self._removed = True
        for path in reversed(self._created):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        if self._restore_owner is not None and self.base_dir.exists():
            with contextlib.suppress(OSError):
                os.chown(self.base_dir, *self._restore_owner)


# --------------------------------------------------------------------------- the warm cluster

CACHE_ENV = "MIGRATION_GUARD_CACHE_DIR"
"""Overrides :func:`cache_root` (the tests point it at a scratch folder)."""

CLUSTER_PREFIX = "cluster-"
INSTALL_PREFIX = "pginstall-"
SOCKET_FALLBACK_PARENT = Path("/tmp")
"""Where the socket folder goes when the one next to the data folder would make too long a path."""

SPAWN_TIMEOUT = 30.0
ORPHAN_TIMEOUT = 10.0
"""How long the children of a killed postmaster get to notice and exit before they are killed."""
ENTER_ATTEMPTS = 5
RETRY_PAUSE = 1.0
"""Before a cached cluster that did not start is tried once more, then built again."""
POLL_INTERVAL = 0.02

_NAME = re.compile(r"(cluster-\d+(?:\.\d+)?)(\.lock|\.log|\.sock|\.init-.*)?")


def cache_root() -> Path:
    """The folder that keeps migration-guard's warm PostgreSQL clusters.

    ``$MIGRATION_GUARD_CACHE_DIR`` if set; else, for root, ``/var/tmp/migration-guard-<uid>``
    (the server runs as an unprivileged user, who cannot enter ``/root``); else the user's cache
    folder: ``$XDG_CACHE_HOME/migration-guard`` or ``~/.cache/migration-guard`` on Linux,
    ``~/Library/Caches/migration-guard`` on macOS, ``%LOCALAPPDATA%\\migration-guard\\Cache`` on
    Windows. Always absolute; nothing is created.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser().absolute()
    if is_root():
        return Path(f"/var/tmp/migration-guard-{os.geteuid()}")
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
        return (base / "migration-guard" / "Cache").absolute()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "migration-guard"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "migration-guard"


def warm_supported() -> bool:
    """Whether this platform has what :class:`WarmCluster` needs (``flock``)."""
    return importlib.util.find_spec("fcntl") is not None


def postgres_major(bindir: Path) -> str:
    """The major version of the PostgreSQL in ``bindir`` (``"15"``, ``"9.6"``), from ``-V``."""
    program = bindir / "postgres"
    try:
        done = subprocess.run(
            [str(program), "--version"],
            capture_output=True,
            text=True,
            timeout=SPAWN_TIMEOUT,
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


def socket_dir_for(data_dir: Path, port: int = DEFAULT_PORT) -> Path:
    """The socket folder of the warm cluster in ``data_dir``: derived from it alone.

    ``<data_dir>.sock`` next to it, unless that makes the socket's path longer than unix sockets
    allow; then ``/tmp/mg-<uid>-<hash of data_dir>``, so that every run finds the same one.
    """
    near = data_dir.with_name(data_dir.name + ".sock")
    if len(os.fsencode(near / f".s.PGSQL.{port}")) <= SOCKET_PATH_MAX:
        return near
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:16]
    uid = os.geteuid() if hasattr(os, "geteuid") else 0
    return SOCKET_FALLBACK_PARENT / f"mg-{uid}-{digest}"


# ------------------------------------------------------------------ processes by pid


def _process_gone(pid: int) -> bool:
    """True if no process ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state == "Z"


def _has_proc() -> bool:
    return Path("/proc/self/cmdline").exists()


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a live ``postgres`` started with ``-D data_dir`` (its postmaster).

    A postmaster keeps its command line (its children rewrite theirs), so this tells a stale
    ``postmaster.pid`` whose number now belongs to another process from the real thing.
    """
    if pid <= 0 or _process_gone(pid):
        return False
    want = os.path.realpath(data_dir)
    if _has_proc():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        args = [os.fsdecode(part) for part in raw.rstrip(b"\0").split(b"\0")]
        if not args or not Path(args[0]).name.startswith("postgres"):
            return False
        return any(
            flag == "-D" and os.path.realpath(value) == want
            for flag, value in zip(args, args[1:], strict=False)
        )
    try:
        done = subprocess.run(
            ["ps", "-ww", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=SPAWN_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    line = done.stdout.strip()
    return (
        done.returncode == 0
        and line.split(" ", 1)[0].rsplit("/", 1)[-1].startswith("postgres")
        and (f" -D {data_dir} " in f"{line} " or f" -D {want} " in f"{line} ")
    )


def _postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the postmaster running ``data_dir``, else None (no or a stale pid file)."""
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first.strip())
    except (OSError, ValueError):
        return None
    return pid if _is_postmaster_of(pid, data_dir) else None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _process_gone(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def _stop_postmaster(pid: int, data_dir: Path) -> None:
    """Fast shutdown of the postmaster ``pid`` of ``data_dir``, then SIGQUIT, then SIGKILL.

    Waits for it to be gone; a signal is only sent while ``pid`` still is that postmaster.
    """
    steps = ((signal.SIGINT, STOP_TIMEOUT), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0))
    for sig, wait in steps:
        if not _is_postmaster_of(pid, data_dir):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait_gone(pid, wait):
            return


def _orphans(data_dir: Path) -> list[int]:
    """``postgres`` processes working in ``data_dir``: children of a killed postmaster (Linux)."""
    if not _has_proc():
        return []
    want = os.path.realpath(data_dir)
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(entry / "cwd") != want:
                continue
            if not Path(os.readlink(entry / "exe")).name.startswith("postgres"):
                continue
        except OSError:
            continue
        if not _process_gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def _end_orphans(data_dir: Path) -> None:
    """Let the children of a killed postmaster exit (they notice), kill those that do not.

    A new postmaster refuses to start while they still hold the old shared memory.
    """
    deadline = time.monotonic() + ORPHAN_TIMEOUT
    while _orphans(data_dir) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL * 5)
    for pid in _orphans(data_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 5.0)


def _remove(path: Path) -> None:
    """Remove a file, a symlink (not what it leads to) or a folder tree; gone already is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _private_folder(path: Path, user: RunAs | None) -> None:
    """Make ``path`` a folder only the server's user may enter, or check that it is one.

    An existing one must be a real folder (not a symlink), owned by that user (or by us, then it
    is handed over) and closed to others: in ``/tmp`` anybody could have made it first.
    """
    owner = user.uid if user is not None else os.geteuid()
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid not in (owner, os.geteuid()):
        raise FatalError(
            f"{path} is not a folder of migration-guard's (a symlink, a file, or someone else's): "
            "the local PostgreSQL will not put its socket there. Remove it and run again."
        )
    if user is not None and st.st_uid != user.uid:
        os.chown(path, user.uid, user.gid)
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)


class _FileLock:
    """An ``flock`` on a file, shared or exclusive, that survives the file being replaced.

    :func:`remove_warm_clusters` deletes lock files while holding them exclusively; a run that
    was waiting on the deleted one notices (its file is no longer the one at the path) and
    locks the new one instead.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def lock(self, *, shared: bool, blocking: bool = True) -> bool:
        """Take (or convert to) the lock; False only if ``blocking`` is False and it is held."""
        import fcntl

        operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        if not blocking:
            operation |= fcntl.LOCK_NB
        while True:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(self._fd, operation)
            except BlockingIOError:
                return False
            held = os.fstat(self._fd)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (
                held.st_dev,
                held.st_ino,
            ):
                return True
            os.close(self._fd)
            self._fd = None

    def unlock(self) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Release the lock (if held) and the file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class WarmCluster:
    """A PostgreSQL cluster kept in the cache folder between runs, shared by concurrent runs.

    The data folder is ``<cache_root()>/cluster-<major version>``, so a run after the first only
    starts the server, and what the cluster holds (the template databases that cache migrated
    states) is still there. Entering takes a shared ``flock`` on ``cluster-<major>.lock`` for the
    whole time the server is used; when the server does not answer, the lock is made exclusive
    to initialise the data folder (when it has none, or a broken one) and start the server, then
    made shared again. Leaving releases the shared lock and tries an exclusive one without
    waiting: whoever gets it is the last run out and stops the server (fast shutdown); if another
    run still holds its shared lock, that run will. The data folder stays; see
    :func:`remove_warm_clusters`.

    ``initdb`` runs into a sibling folder renamed into place when it has finished, so a run
    killed halfway leaves nothing that looks like a cluster; a stale ``postmaster.pid`` (the
    server killed hard) is recognised by asking whether its pid still is a postmaster of this
    folder. The server is not a child of the run that started it: it outlives that run when
    another one still uses it. As root, the server runs as an unprivileged user (see
    :func:`choose_user`), who owns the data and socket folders. ::

        with WarmCluster() as warm:
            use(warm.server)
    """

    port = DEFAULT_PORT
    """Fixed: a server started by one run must be found by the next one."""

    def __init__(
        self,
        *,
        root: str | os.PathLike[str] | None = None,
        bindir: str | os.PathLike[str] | None = None,
        search: Sequence[Path] | None = None,
        run_as: str | None = None,
        timeout: float = START_TIMEOUT,
    ) -> None:
        """Find the binaries and the user; nothing starts before the ``with`` block.

        ``root`` is the cache folder (default :func:`cache_root`); ``bindir``, ``search`` and
        ``run_as`` are as for :meth:`LocalCluster.start`.
        """
        explicit = Path(bindir).expanduser().absolute() if bindir is not None else None
        found = find_binaries(explicit, candidates=search)
        if found is None:
            raise missing_binaries_error(explicit, search)
        self.source_bindir = found
        """The binaries as found."""
        self.bindir = found
        """Where the programs run from: ``source_bindir``, or a copy (see below)."""
        self.user = choose_user(run_as)
        self.timeout = timeout
        chosen = Path(root).expanduser().absolute() if root is not None else cache_root()
        self.root = Path(os.path.realpath(chosen))
        self.major = postgres_major(found)
        self.data_dir = self.root / f"{CLUSTER_PREFIX}{self.major}"
        self.lock_path = self.data_dir.with_name(self.data_dir.name + ".lock")
        self.log_path = self.data_dir.with_name(self.data_dir.name + ".log")
        self.socket_dir = socket_dir_for(self.data_dir, self.port)
        self.server = Server(host=str(self.socket_dir), port=self.port, user="postgres")
        self.pid: int | None = None
        """The postmaster's pid once entered (it may have been started by another run)."""
        self.already_running = False
        """The server answered when this run came: another run was using it."""
        self.initialised = False
        """This run ran initdb (no usable data folder was there)."""
        self.rebuilt_because: str | None = None
        """Why an existing data folder was thrown away and initialised again, if it was."""
        self.stopped = False
        """This run was the last one out and stopped the server."""
        self._library_path: list[Path] = []
        self._lock: _FileLock | None = None

    # ----------------------------------------------------------------- public API

    @property
    def state(self) -> str:
        """``warm`` or ``initialised now``, for the line that says where the server is."""
        if not self.initialised:
            return "warm, already running" if self.already_running else "warm"
        if self.rebuilt_because:
            why = self.rebuilt_because.split(". The end of its log", 1)[0]
            return f"initialised now; the cached cluster did not start: {why}"
        return "initialised now"

    def __enter__(self) -> WarmCluster:
        self._prepare_root()
        self._lock = _FileLock(self.lock_path)
        try:
            self._acquire()
        except BaseException:
            self._leave()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave()

    # ----------------------------------------------------------------- entering and leaving

    def _acquire(self) -> None:
        """Hold the shared lock on a server that answers, starting it first if need be."""
        lock = self._lock
        assert lock is not None
        for attempt in range(ENTER_ATTEMPTS):
            lock.lock(shared=True)
            pid = self._answering_pid()
            if pid is not None:
                self.already_running = attempt == 0
                self.pid = pid
                return
            # Exclusive: no run is using the server, none can stop or start it meanwhile.
            lock.lock(shared=False)
            self._bring_up()
            # Converting is not atomic: a leaving run may slip in and stop it. Look again.
            lock.lock(shared=True)
            pid = self._answering_pid()
            if pid is not None:
                self.pid = pid
                return
        raise FatalError(
            f"The local PostgreSQL in {self.data_dir} was stopped {ENTER_ATTEMPTS} times right "
            f"after it was started. The end of its log: {_log_tail(self.log_path)}"
        )

    def _leave(self) -> None:
        """Release the shared lock; the last run out (exclusive lock at once) stops the server."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            lock.unlock()
            if lock.lock(shared=False, blocking=False):
                pid = _postmaster_pid(self.data_dir)
                if pid is not None:
                    _stop_postmaster(pid, self.data_dir)
                    self.stopped = True
        finally:
            lock.close()

    def _answering_pid(self) -> int | None:
        """The postmaster's pid if it runs this data folder and answers a query."""
        pid = _postmaster_pid(self.data_dir)
        if pid is None or not self._answers():
            return None
        return pid

    def _answers(self) -> bool:
        if not (self.socket_dir / f".s.PGSQL.{self.port}").exists():
            return False
        try:
            conn = database.connect(self.server, "postgres")
        except database.driver_errors() as exc:
            # Busy is up: only "refused", "starting up", "shutting down" and the like are not.
            return "too many clients" in str(exc)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            cur.fetchone()
        except database.driver_errors():
            return False
        finally:
            conn.close()
        return True

    # ----------------------------------------------------------------- under the exclusive lock

    def _bring_up(self) -> None:
        """Make the server run and answer: initdb if need be, start, wait. Exclusive lock held."""
        pid = _postmaster_pid(self.data_dir)
        if pid is not None:
            # A postmaster of ours that did not answer: still starting (its starter was killed)
            # or recovering from a crash. Give it the start timeout, else stop it.
            if self._wait_ready(pid) is None:
                return
            _stop_postmaster(pid, self.data_dir)
        self._clear_leftovers()
        if self.user is not None:
            self._reach_binaries(self.user)
        if not self._valid_data_dir():
            self._initdb()
        try:
            self._start()
        except FatalError as exc:
            if self.initialised or _postmaster_pid(self.data_dir) is not None:
                raise
            first = exc
        else:
            return
        # Once more after a pause, in case what stopped it passes (the children of a killed
        # server, which only Linux lets us find, still holding its shared memory).
        time.sleep(RETRY_PAUSE)
        self._clear_leftovers()
        try:
            self._start()
        except FatalError:
            if _postmaster_pid(self.data_dir) is not None:
                raise
        else:
            return
        # The cached cluster does not start (damaged, or made by another user): it is only a
        # cache, so it is built again.
        self.rebuilt_because = str(first)
        self._clear_leftovers()
        self._initdb()
        self._start()

    def _prepare_root(self) -> None:
        """Create the cache folder; as root, check that it is ours alone and reachable."""
        missing = [p for p in (self.root, *self.root.parents) if not p.exists()]
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):
                folder.mkdir()
                # Traversable by the server's user whatever the umask.
                os.chmod(folder, 0o755 if self.user is not None else 0o700)
        st = os.lstat(self.root)
        if not stat.S_ISDIR(st.st_mode):
            raise FatalError(
                f"The cache folder {self.root} of the local PostgreSQL is not a folder. Remove "
                f"it, or point {CACHE_ENV} at another folder."
            )
        if self.user is None:
            return
        if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise FatalError(
                f"The cache folder {self.root} of the local PostgreSQL must belong to root and "
                "be writable by root only (root runs initdb and the server from it); it belongs "
                f"to uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):o}. Remove it (it only "
                f"holds a cache) or point {CACHE_ENV} at another folder."
            )
        blocked = _blocking_parent(self.data_dir, self.user)
        if blocked is not None:
            raise FatalError(
                f"The local PostgreSQL runs as the user {self.user.name!r} (PostgreSQL refuses to "
                f"run as root), and that user cannot enter {blocked}, so it cannot reach the "
                f"cache folder {self.root}. Point {CACHE_ENV} at a folder outside folders only "
                f"root may enter (such as /root), or make {blocked} traversable (chmod o+x)."
            )

    def _valid_data_dir(self) -> bool:
        """A finished initdb of this major version (an unfinished one never gets the name)."""
        try:
            version = (self.data_dir / "PG_VERSION").read_text().strip()
        except OSError:
            return False
        return version == self.major and (self.data_dir / "global" / "pg_control").is_file()

    def _clear_leftovers(self) -> None:
        """What a server killed hard or an interrupted initdb leaves. No postmaster runs."""
        _end_orphans(self.data_dir)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            (self.data_dir / "postmaster.pid").unlink()
        if self.socket_dir.is_dir() and not self.socket_dir.is_symlink():
            for stale in self.socket_dir.glob(".s.PGSQL.*"):
                _remove(stale)
        for unfinished in self.root.glob(f"{self.data_dir.name}.init-*"):
            _remove(unfinished)

    def _reach_binaries(self, user: RunAs) -> None:
        """Run from a copy of the installation in the cache when ``user`` cannot reach it.

        The copy is kept (named after the binaries it copies, so a changed installation gets a
        new one), made in a sibling folder renamed into place once complete.
        """
        program = self.source_bindir / "postgres"
        if _blocking_parent(program, user) is None:
            return
        st = program.resolve().stat()
        key = hashlib.sha256(
            f"{program.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()
        ).hexdigest()[:16]
        copy = self.root / f"{INSTALL_PREFIX}{key}"
        if not (copy / "COMPLETE").is_file():
            for unfinished in self.root.glob(f"{copy.name}*"):
                _remove(unfinished)
            partial = copy.with_name(f"{copy.name}.partial-{os.getpid()}")
            try:
                copy_installation(self.source_bindir, partial, user)
                (partial / "COMPLETE").write_text(f"{program.resolve()}\n")
                os.rename(partial, copy)
            except BaseException:
                _remove(partial)
                raise
        real_bin = program.resolve().parent
        self.bindir = copy / real_bin.name
        self._library_path = library_folders(copy)

    def _program(self, name: str) -> str:
        if self.bindir == self.source_bindir:
            return str(self.bindir / name)
        return f"{self.source_bindir / name}, run from a copy in {self.bindir}"

    def _popen_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "stdin": subprocess.DEVNULL,
            "cwd": self.root,
            "env": server_env(self._library_path),
        }
        if self.user is not None:
            kwargs.update(self.user.popen_kwargs())
        return kwargs

    def _initdb(self) -> None:
        """initdb into a sibling folder, renamed to the data folder once it has finished."""
        _remove(self.data_dir)
        partial = self.data_dir.with_name(f"{self.data_dir.name}.init-{os.getpid()}")
        _remove(partial)
        partial.mkdir(mode=0o700)
        try:
            if self.user is not None:
                os.chown(partial, self.user.uid, self.user.gid)
            argv = [str(self.bindir / "initdb"), "-D", str(partial), *INITDB_OPTIONS]
            with self.log_path.open("wb") as log:
                proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, **self._popen_kwargs()
                )
                try:
                    code = proc.wait(timeout=INITDB_TIMEOUT)
                except subprocess.TimeoutExpired:
                    code = None
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
            if code is None:
                raise FatalError(
                    f"initdb ({self._program('initdb')}) did not finish within "
                    f"{INITDB_TIMEOUT:.0f} s for {self.data_dir}. Its output: "
                    f"{_log_tail(self.log_path)}"
                )
            if code != 0:
                raise FatalError(
                    f"initdb ({self._program('initdb')}) failed with exit code {code} for "
                    f"{self.data_dir}. Its output: {_log_tail(self.log_path)}"
                )
            os.rename(partial, self.data_dir)
        except BaseException:
            _remove(partial)
            raise
        self.initialised = True

    def _start(self) -> None:
        """Start the postmaster detached from this run, and wait until it answers."""
        _private_folder(self.socket_dir, self.user)
        argv = postmaster_argv(self.bindir, self.data_dir, self.socket_dir, self.port)
        # Through sh, in the background: the postmaster is nobody's child here, so whichever
        # run is the last one out can stop it, and none is left with a zombie.
        # A fresh log per start, unless initdb's output is in it.
        with self.log_path.open("ab" if self.initialised else "wb") as log:
            try:
                done = subprocess.run(
                    ["/bin/sh", "-c", '"$@" >&2 & echo $!', "sh", *argv],
                    stdout=subprocess.PIPE,
                    stderr=log,
                    start_new_session=True,
                    timeout=SPAWN_TIMEOUT,
                    check=False,
                    **self._popen_kwargs(),
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise FatalError(
                    f"Could not start the local PostgreSQL ({self._program('postgres')}): {exc}."
                ) from exc
        try:
            pid = int(done.stdout.strip())
        except ValueError:
            raise FatalError(
                f"Could not start the local PostgreSQL ({self._program('postgres')}) in "
                f"{self.data_dir}. The end of its log: {_log_tail(self.log_path)}"
            ) from None
        try:
            problem = self._wait_ready(pid)
        except BaseException:
            _stop_postmaster(pid, self.data_dir)
            raise
        if problem is not None:
            _stop_postmaster(pid, self.data_dir)
            raise FatalError(
                f"The local PostgreSQL ({self._program('postgres')}) {problem} in "
                f"{self.data_dir}. The end of its log: {_log_tail(self.log_path)}"
            )

    def _wait_ready(self, pid: int) -> str | None:
        """None once the server answers, else what went wrong (it exited, or the timeout)."""
        deadline = time.monotonic() + self.timeout
        socket_file = self.socket_dir / f".s.PGSQL.{self.port}"
        last = "the socket did not appear"
        while True:
            if _process_gone(pid):
                return "exited while starting"
            if socket_file.exists():
                try:
                    conn = database.connect(self.server, "postgres")
                except database.driver_errors() as exc:
                    last = database.one_line(exc)
                else:
                    try:
                        cur = conn.cursor()
                        cur.execute("SELECT 1")
                        cur.fetchone()
                    finally:
                        conn.close()
                    return None
            if time.monotonic() >= deadline:
                return f"did not accept connections within {self.timeout:.0f} s ({last})"
            time.sleep(POLL_INTERVAL)


def remove_warm_clusters(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Stop and delete the warm clusters in ``root`` (default :func:`cache_root`); what went.

    For ``migration-guard clean``. Every cluster's lock is taken exclusively first, without
    waiting: if a run holds one, nothing is touched and FatalError says a run is in progress.
    Then each running server is stopped, and the data folders, their socket folders, logs,
    unfinished initdb folders and copies of the binaries are removed, the lock files last.
    Other files in the cache folder stay.
    """
    chosen = Path(root).expanduser().absolute() if root is not None else cache_root()
    base = Path(os.path.realpath(chosen))
    if not base.is_dir():
        return []
    names = sorted(
        {found.group(1) for entry in base.iterdir() if (found := _NAME.fullmatch(entry.name))}
    )
    locks: list[tuple[Path, _FileLock]] = []
    removed: list[Path] = []
    try:
        for name in names:
            data_dir = base / name
            lock = _FileLock(data_dir.with_name(name + ".lock"))
            if not lock.lock(shared=False, blocking=False):
                lock.close()
                raise FatalError(
                    f"A migration-guard run is in progress on the local PostgreSQL in {data_dir}: "
                    "nothing was removed. Run `migration-guard clean` again when it has finished."
                )
            locks.append((data_dir, lock))
        for data_dir, _lock in locks:
            pid = _postmaster_pid(data_dir)
            if pid is not None:
                _stop_postmaster(pid, data_dir)
            _end_orphans(data_dir)
            places = [
                data_dir,
                socket_dir_for(data_dir),
                data_dir.with_name(data_dir.name + ".sock"),
                data_dir.with_name(data_dir.name + ".log"),
                *sorted(base.glob(f"{data_dir.name}.init-*")),
            ]
            for path in dict.fromkeys(places):
                if os.path.lexists(path):
                    _remove(path)
                    removed.append(path)
        for copy in sorted(base.glob(f"{INSTALL_PREFIX}*")):
            _remove(copy)
            removed.append(copy)
        for data_dir, _lock in locks:
            lock_path = data_dir.with_name(data_dir.name + ".lock")
            _remove(lock_path)
            removed.append(lock_path)
    finally:
        for _data_dir, lock in locks:
            lock.close()
    return removed
