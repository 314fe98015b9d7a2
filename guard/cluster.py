"""Throwaway PostgreSQL clusters, and what running any local PostgreSQL server takes.

:class:`LocalCluster` runs ``initdb`` into a folder of the caller's and starts ``postgres`` on a
unix socket in that folder only (no TCP), with the settings that suit a database nobody keeps
(``fsync=off`` and friends; the warm cluster of :mod:`guard.warm` uses them too)::

    with LocalCluster.start(base_dir) as cluster:
        use(cluster.server)

Leaving the block stops the server and removes what ``start`` created in ``base_dir``. The
binaries come from :func:`guard.binaries.find_binaries`.

PostgreSQL refuses to run as root. When this process is root, ``initdb`` and ``postgres`` run as
the ``postgres`` system user if there is one, else as ``nobody`` (or as ``run_as``), and the
folders they need are handed to that user. That user must be able to reach ``base_dir``: it must
not lie under a folder that only root may enter (``/root``, or pytest's own temporary folders,
which are 0700); :meth:`LocalCluster.start` says so rather than failing obscurely. The binaries,
on the other hand, may lie out of that user's reach (the ``pgserver`` wheel in a virtualenv under
``/root``): then their installation is copied into ``base_dir`` and run from there (see
:func:`copy_installation`).

Also here, for :mod:`guard.warm`: the server's command line and environment, waiting for it to
answer (:func:`select_one`), and finding, stopping and cleaning up after a postmaster by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from guard import database
from guard.binaries import REQUIRED, find_binaries, has_binaries, missing_binaries_error
from guard.database import Server
from guard.errors import FatalError

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
SPAWN_TIMEOUT = 30.0
ORPHAN_TIMEOUT = 10.0
"""How long the children of a killed postmaster get to notice and exit before they are killed."""
POLL_INTERVAL = 0.02


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


def blocking_parent(path: Path, user: RunAs) -> Path | None:
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
        if blocking_parent(path, user) is not None:
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


def select_one(server: Server) -> str | None:
    """Connect to ``server``'s ``postgres`` database and run ``SELECT 1``: None once it answers.

    If the connection is refused (starting up, not listening yet...), why, on one line. Errors of
    the query itself, on a connection that was accepted, propagate.
    """
    try:
        conn = database.connect(server, "postgres")
    except database.driver_errors() as exc:
        return database.one_line(exc)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchone()
    finally:
        conn.close()
    return None


# --------------------------------------------------------------------------- the cluster


def log_tail(path: Path, lines: int = 15) -> str:
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
            blocked = blocking_parent(base, user)
            if blocked is not None:
                raise FatalError(
                    f"The local PostgreSQL runs as the user {user.name!r} (PostgreSQL refuses to "
                    f"run as root), and that user cannot enter {blocked}, so it cannot reach the "
                    f"folder {base}. Use a folder outside folders only root may enter (such as "
                    "/root, pytest's temporary folders or anything inside a tempfile.mkdtemp() "
                    "folder, all 0700): pass the tempfile.mkdtemp() folder itself, or make "
                    f"{blocked} traversable (chmod o+x)."
                )
            copy_binaries = blocking_parent(found / "postgres", user) is not None
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
                f"for {self.data_dir}. Its output: {log_tail(self.log_path)}"
            )
        self._running.remove(proc)
        if code != 0:
            raise FatalError(
                f"initdb ({self._program('initdb')}) failed with exit code {code} for "
                f"{self.data_dir}. Its output: {log_tail(self.log_path)}"
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
                    f"{log_tail(self.log_path)}"
                )
            if socket_file.exists():
                refused = select_one(self.server)
                if refused is None:
                    return
                last = refused
            if time.monotonic() >= deadline:
                raise FatalError(
                    f"The local PostgreSQL in {self.data_dir} did not accept connections within "
                    f"{timeout:.0f} s ({last}). The end of its log: {log_tail(self.log_path)}"
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


# ------------------------------------------------------------------ processes by pid


def process_gone(pid: int) -> bool:
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
    if pid <= 0 or process_gone(pid):
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


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the postmaster running ``data_dir``, else None (no or a stale pid file)."""
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first.strip())
    except (OSError, ValueError):
        return None
    return pid if _is_postmaster_of(pid, data_dir) else None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def stop_postmaster(pid: int, data_dir: Path) -> None:
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
        if not process_gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def end_orphans(data_dir: Path) -> None:
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
