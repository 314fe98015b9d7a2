"""The warm PostgreSQL cluster: kept in the cache folder between runs, shared by concurrent runs.

:class:`WarmCluster`, what ``--db local`` uses, keeps its data folder in the cache folder
(:func:`cache_root`) between runs, so that a run only starts the server and the template
databases that cache migrated states survive; concurrent runs share the server and the last one
out stops it (:func:`remove_warm_clusters` is ``migration-guard clean``). It runs the binaries of
:func:`guard.binaries.find_binaries` with the settings, users and process helpers of
:mod:`guard.cluster`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from guard import database
from guard.binaries import find_binaries, missing_binaries_error
from guard.cluster import (
    DEFAULT_PORT,
    INITDB_OPTIONS,
    INITDB_TIMEOUT,
    POLL_INTERVAL,
    SOCKET_PATH_MAX,
    SPAWN_TIMEOUT,
    START_TIMEOUT,
    RunAs,
    blocking_parent,
    choose_user,
    copy_installation,
    end_orphans,
    is_root,
    library_folders,
    log_tail,
    postmaster_argv,
    postmaster_pid,
    process_gone,
    select_one,
    server_env,
    stop_postmaster,
)
from guard.database import Server
from guard.errors import FatalError

CACHE_ENV = "MIGRATION_GUARD_CACHE_DIR"
"""Overrides :func:`cache_root` (the tests point it at a scratch folder)."""

CLUSTER_PREFIX = "cluster-"
INSTALL_PREFIX = "pginstall-"
SOCKET_FALLBACK_PARENT = Path("/tmp")
"""Where the socket folder goes when the one next to the data folder would make too long a path."""

ENTER_ATTEMPTS = 5
RETRY_PAUSE = 1.0
"""Before a cached cluster that did not start is tried once more, then built again."""

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
            f"after it was started. The end of its log: {log_tail(self.log_path)}"
        )

    def _leave(self) -> None:
        """Release the shared lock; the last run out (exclusive lock at once) stops the server."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            lock.unlock()
            if lock.lock(shared=False, blocking=False):
                pid = postmaster_pid(self.data_dir)
                if pid is not None:
                    stop_postmaster(pid, self.data_dir)
                    self.stopped = True
        finally:
            lock.close()

    def _answering_pid(self) -> int | None:
        """The postmaster's pid if it runs this data folder and answers a query."""
        pid = postmaster_pid(self.data_dir)
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
        pid = postmaster_pid(self.data_dir)
        if pid is not None:
            # A postmaster of ours that did not answer: still starting (its starter was killed)
            # or recovering from a crash. Give it the start timeout, else stop it.
            if self._wait_ready(pid) is None:
                return
            stop_postmaster(pid, self.data_dir)
        self._clear_leftovers()
        if self.user is not None:
            self._reach_binaries(self.user)
        if not self._valid_data_dir():
            self._initdb()
        try:
            self._start()
        except FatalError as exc:
            if self.initialised or postmaster_pid(self.data_dir) is not None:
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
            if postmaster_pid(self.data_dir) is not None:
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
        blocked = blocking_parent(self.data_dir, self.user)
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
        end_orphans(self.data_dir)
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
        if blocking_parent(program, user) is None:
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
                    f"{log_tail(self.log_path)}"
                )
            if code != 0:
                raise FatalError(
                    f"initdb ({self._program('initdb')}) failed with exit code {code} for "
                    f"{self.data_dir}. Its output: {log_tail(self.log_path)}"
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
                f"{self.data_dir}. The end of its log: {log_tail(self.log_path)}"
            ) from None
        try:
            problem = self._wait_ready(pid)
        except BaseException:
            stop_postmaster(pid, self.data_dir)
            raise
        if problem is not None:
            stop_postmaster(pid, self.data_dir)
            raise FatalError(
                f"The local PostgreSQL ({self._program('postgres')}) {problem} in "
                f"{self.data_dir}. The end of its log: {log_tail(self.log_path)}"
            )

    def _wait_ready(self, pid: int) -> str | None:
        """None once the server answers, else what went wrong (it exited, or the timeout)."""
        deadline = time.monotonic() + self.timeout
        socket_file = self.socket_dir / f".s.PGSQL.{self.port}"
        last = "the socket did not appear"
        while True:
            if process_gone(pid):
                return "exited while starting"
            if socket_file.exists():
                refused = select_one(self.server)
                if refused is None:
                    return None
                last = refused
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
            pid = postmaster_pid(data_dir)
            if pid is not None:
                stop_postmaster(pid, data_dir)
            end_orphans(data_dir)
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
