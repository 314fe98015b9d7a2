"""Who runs the local PostgreSQL server, and which folders that user can reach.

PostgreSQL refuses to run as root. When this process is root, ``initdb`` and ``postgres`` run as
the ``postgres`` system user if there is one, else as ``nobody`` (or as ``run_as``)
(:func:`choose_user`); :func:`blocking_parent` finds the folder that keeps that user from a path.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.errors import FatalError


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
