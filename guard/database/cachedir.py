"""The cache folder: where it is, what the warm clusters keep in it, and removing them.

:func:`cache_root` is the folder (``$MIGRATION_GUARD_CACHE_DIR`` overrides it). The warm cluster
of :mod:`guard.database.warm` keeps there its data folder ``cluster-<major>``, with its lock,
log and socket folder beside it, and copies of binaries its user cannot reach
(``pginstall-<key>``). :func:`remove_warm_clusters` is what ``migration-guard clean`` does to
them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import sys
from pathlib import Path

from guard.database.filelock import FileLock
from guard.database.postmaster import (
    DEFAULT_PORT,
    SOCKET_PATH_MAX,
    end_orphans,
    postmaster_pid,
    stop_postmaster,
)
from guard.database.relocation import copy_installation, library_folders
from guard.database.users import RunAs, blocking_parent, is_root
from guard.errors import FatalError

CACHE_ENV = "MIGRATION_GUARD_CACHE_DIR"
"""Overrides :func:`cache_root` (the tests point it at a scratch folder)."""

CLUSTER_PREFIX = "cluster-"
INSTALL_PREFIX = "pginstall-"
SOCKET_FALLBACK_PARENT = Path("/tmp")
"""Where the socket folder goes when the one next to the data folder would make too long a path."""
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


def remove_path(path: Path) -> None:
    """Remove a file, a symlink (not what it leads to) or a folder tree; gone already is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def private_folder(path: Path, user: RunAs | None) -> None:
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


def prepare_root(root: Path, data_dir: Path, user: RunAs | None) -> None:
    """Create the cache folder; as root, check that it is ours alone and reachable."""
    missing = [p for p in (root, *root.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
            # Traversable by the server's user whatever the umask.
            os.chmod(folder, 0o755 if user is not None else 0o700)
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise FatalError(
            f"The cache folder {root} of the local PostgreSQL is not a folder. Remove "
            f"it, or point {CACHE_ENV} at another folder."
        )
    if user is None:
        return
    if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise FatalError(
            f"The cache folder {root} of the local PostgreSQL must belong to root and "
            "be writable by root only (root runs initdb and the server from it); it belongs "
            f"to uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):o}. Remove it (it only "
            f"holds a cache) or point {CACHE_ENV} at another folder."
        )
    blocked = blocking_parent(data_dir, user)
    if blocked is not None:
        raise FatalError(
            f"The local PostgreSQL runs as the user {user.name!r} (PostgreSQL refuses to "
            f"run as root), and that user cannot enter {blocked}, so it cannot reach the "
            f"cache folder {root}. Point {CACHE_ENV} at a folder outside folders only "
            f"root may enter (such as /root), or make {blocked} traversable (chmod o+x)."
        )



def kept_installation(
    root: Path, source_bindir: Path, user: RunAs
) -> tuple[Path, list[Path]] | None:
    """Where to run the binaries from when ``user`` cannot reach them: a copy in the cache.

    (bin folder, library folders) of the copy; None when ``user`` reaches the binaries.

    The copy is kept (named after the binaries it copies, so a changed installation gets a
    new one), made in a sibling folder renamed into place once complete.
    """
    program = source_bindir / "postgres"
    if blocking_parent(program, user) is None:
        return None
    st = program.resolve().stat()
    key = hashlib.sha256(
        f"{program.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()
    ).hexdigest()[:16]
    copy = root / f"{INSTALL_PREFIX}{key}"
    if not (copy / "COMPLETE").is_file():
        for unfinished in root.glob(f"{copy.name}*"):
            remove_path(unfinished)
        partial = copy.with_name(f"{copy.name}.partial-{os.getpid()}")
        try:
            copy_installation(source_bindir, partial, user)
            (partial / "COMPLETE").write_text(f"{program.resolve()}\n")
            os.rename(partial, copy)
        except BaseException:
            remove_path(partial)
            raise
    real_bin = program.resolve().parent
    return copy / real_bin.name, library_folders(copy)


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
    locks: list[tuple[Path, FileLock]] = []
    removed: list[Path] = []
    try:
        for name in names:
            data_dir = base / name
            lock = FileLock(data_dir.with_name(name + ".lock"))
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
                    remove_path(path)
                    removed.append(path)
        for copy in sorted(base.glob(f"{INSTALL_PREFIX}*")):
            remove_path(copy)
            removed.append(copy)
        for data_dir, _lock in locks:
            lock_path = data_dir.with_name(data_dir.name + ".lock")
            remove_path(lock_path)
            removed.append(lock_path)
    finally:
        for _data_dir, lock in locks:
            lock.close()
    return removed
