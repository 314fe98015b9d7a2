"""An ``flock`` on a file, shared or exclusive, for the runs that share the warm cluster."""

from __future__ import annotations

import os
from pathlib import Path


class FileLock:
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

