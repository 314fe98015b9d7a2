"""Throwaway PostgreSQL clusters: ``initdb`` into a folder of the caller's, then ``postgres``.

:class:`LocalCluster` starts ``postgres`` on a unix socket in that folder only (no TCP), with the
settings of :mod:`guard.database.postmaster` that suit a database nobody keeps::

    with LocalCluster.start(base_dir) as cluster:
        use(cluster.server)

Leaving the block stops the server and removes what ``start`` created in ``base_dir``. The
binaries come from :func:`guard.database.binaries.find_binaries`.

PostgreSQL refuses to run as root. When this process is root, the server runs as the user of
:func:`guard.database.users.choose_user`, and the folders it needs are handed to that user. That
user must be able to reach ``base_dir``: it must not lie under a folder that only root may enter
(``/root``, or pytest's own temporary folders, which are 0700); :meth:`LocalCluster.start` says
so rather than failing obscurely. The binaries, on the other hand, may lie out of that user's
reach (the ``pgserver`` wheel in a virtualenv under ``/root``): then their installation is copied
into ``base_dir`` and run from there (:mod:`guard.database.relocation`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from guard.database.binaries import find_binaries, missing_binaries_error
from guard.database.postmaster import (
    DEFAULT_PORT,
    SOCKET_PATH_MAX,
    START_TIMEOUT,
    STOP_TIMEOUT,
    log_tail,
    popen_kwargs,
    postmaster_argv,
    program_label,
    run_initdb,
    select_one,
)
from guard.database.relocation import INSTALL_COPY, copy_installation, library_folders
from guard.database.server import Server
from guard.database.users import RunAs, blocking_parent, choose_user
from guard.errors import FatalError


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
        """Every process started and not yet waited for: the postmaster (initdb never outlives
        :func:`run_initdb`)."""
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
        return program_label(self.source_bindir, self.bindir, name)

    def _popen_kwargs(self) -> dict[str, Any]:
        return popen_kwargs(self.base_dir, self._library_path, self.user)

    def _initdb(self) -> None:
        run_initdb(self.bindir, self.data_dir, self.log_path, program=self._program("initdb"),
                   append=True, popen_kwargs=self._popen_kwargs())

    def _start_postmaster(self) -> None:
        argv = postmaster_argv(self.bindir, self.data_dir, self.socket_dir, self.server.port)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                **self._popen_kwargs(),
            )
        self._running.append(self.process)

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
