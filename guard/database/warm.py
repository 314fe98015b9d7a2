"""The warm PostgreSQL cluster: kept in the cache folder between runs, shared by concurrent runs.

:class:`WarmCluster`, what ``--db local`` uses, keeps its data folder in the cache folder
(:mod:`guard.database.cachedir`) between runs, so that a run only starts the server and the
template databases that cache migrated states survive; concurrent runs share the server and the
last one out stops it. It runs the binaries of :func:`guard.database.binaries.find_binaries` with
the settings and process helpers of :mod:`guard.database.postmaster`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from guard.database.binaries import find_binaries, missing_binaries_error, postgres_major
from guard.database.cachedir import (
    CLUSTER_PREFIX,
    cache_root,
    kept_installation,
    prepare_root,
    private_folder,
    remove_path,
    socket_dir_for,
)
from guard.database.filelock import FileLock
from guard.database.postmaster import (
    DEFAULT_PORT,
    POLL_INTERVAL,
    SPAWN_TIMEOUT,
    START_TIMEOUT,
    end_orphans,
    log_tail,
    popen_kwargs,
    postmaster_argv,
    postmaster_pid,
    process_gone,
    program_label,
    run_initdb,
    select_one,
    stop_postmaster,
)
from guard.database.server import Server, connect, driver_errors
from guard.database.users import RunAs, choose_user
from guard.errors import FatalError

ENTER_ATTEMPTS = 5
RETRY_PAUSE = 1.0
"""Before a cached cluster that did not start is tried once more, then built again."""


def warm_supported() -> bool:
    """Whether this platform has what :class:`WarmCluster` needs (``flock``)."""
    return importlib.util.find_spec("fcntl") is not None


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
        self._lock: FileLock | None = None

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
        prepare_root(self.root, self.data_dir, self.user)
        self._lock = FileLock(self.lock_path)
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
            conn = connect(self.server, "postgres")
        except driver_errors() as exc:
            # Busy is up: only "refused", "starting up", "shutting down" and the like are not.
            return "too many clients" in str(exc)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            cur.fetchone()
        except driver_errors():
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
                remove_path(stale)
        for unfinished in self.root.glob(f"{self.data_dir.name}.init-*"):
            remove_path(unfinished)

    def _reach_binaries(self, user: RunAs) -> None:
        """Run from a copy of the installation in the cache when ``user`` cannot reach it."""
        copy = kept_installation(self.root, self.source_bindir, user)
        if copy is not None:
            self.bindir, self._library_path = copy

    def _program(self, name: str) -> str:
        return program_label(self.source_bindir, self.bindir, name)

    def _popen_kwargs(self) -> dict[str, Any]:
        return popen_kwargs(self.root, self._library_path, self.user)

    def _initdb(self) -> None:
        """initdb into a sibling folder, renamed to the data folder once it has finished."""
        remove_path(self.data_dir)
        partial = self.data_dir.with_name(f"{self.data_dir.name}.init-{os.getpid()}")
        remove_path(partial)
        partial.mkdir(mode=0o700)
        try:
            if self.user is not None:
                os.chown(partial, self.user.uid, self.user.gid)
            run_initdb(self.bindir, self.data_dir, self.log_path, into=partial,
                       program=self._program("initdb"), append=False,
                       popen_kwargs=self._popen_kwargs())
            os.rename(partial, self.data_dir)
        except BaseException:
            remove_path(partial)
            raise
        self.initialised = True

    def _start(self) -> None:
        """Start the postmaster detached from this run, and wait until it answers."""
        private_folder(self.socket_dir, self.user)
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
