"""Copying a PostgreSQL installation to where the server's user can reach it.

Root runs the server as an unprivileged user (:mod:`guard.database.users`), who may not be able to
enter the folder the binaries are in: typically the ``pgserver`` wheel in a virtualenv under
``/root`` (0700). :func:`copy_installation` then copies the installation into a folder of the
cluster's (or of the cache, for the warm cluster), and the programs run from there with
:func:`library_folders` on ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from guard.database.binaries import REQUIRED, has_binaries
from guard.database.users import RunAs, blocking_parent
from guard.errors import FatalError

LDD_TIMEOUT = 60.0

INSTALL_COPY = "pginstall"
"""The folder in ``base_dir`` that receives a copy of binaries the server's user cannot reach."""
LIBRARY_FOLDERS = ("lib", "lib64")
COPIED_FOLDERS = (*LIBRARY_FOLDERS, "share")
"""Besides the bin folder, what of an installation its programs need: libraries and data files."""


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
