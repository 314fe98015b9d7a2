"""Looking at this machine's processes (Linux /proc): what a test started must be gone after."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def interruptible() -> None:
    """``preexec_fn`` for a child the test will Ctrl-C: SIGINT back to its default.

    A shell without job control starts its background commands with SIGINT ignored (``pytest
    ... &`` in a script), the children inherit that, and Python keeps an inherited ignore, as it
    should: the test would then see the tool ignore its Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return False


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and not process_gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def processes_using(folder: Path) -> list[int]:
    """Live processes with ``folder`` in their command line, program path or working folder.

    The program path catches a postmaster's children, whose command line PostgreSQL rewrites to
    "postgres: checkpointer" and the like (Linux /proc).
    """
    prefix = str(folder)
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            places = [(entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()]
        except OSError:
            continue
        for link in ("exe", "cwd"):
            with contextlib.suppress(OSError):
                places.append(os.readlink(entry / link))
        if any(prefix in place for place in places) and not process_gone(int(entry.name)):
            found.append(int(entry.name))
    return found
