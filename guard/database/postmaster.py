"""Running a local PostgreSQL server process, for the throwaway and the warm cluster alike.

The settings that suit a database nobody keeps (``fsync=off`` and friends), the command lines and
environment of ``initdb`` (:func:`run_initdb`) and ``postgres`` (:func:`postmaster_argv`),
waiting for a server to answer (:func:`select_one`), and finding, stopping and cleaning up after
a postmaster by its pid (:func:`postmaster_pid`, :func:`stop_postmaster`, :func:`end_orphans`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guard.database.server import Server, connect, driver_errors, one_line
from guard.database.users import RunAs
from guard.errors import FatalError

DEFAULT_PORT = 5432
"""Safe to reuse: the server listens on a socket in a private folder only."""

START_TIMEOUT = 30.0
INITDB_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
SOCKET_PATH_MAX = 100
"""A little under the 104/108 bytes macOS/Linux allow for a unix-socket path."""

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



def program_label(source_bindir: Path, bindir: Path, name: str) -> str:
    """A program's path for messages: as found, and where it ran from if that was a copy."""
    if bindir == source_bindir:
        return str(bindir / name)
    return f"{source_bindir / name}, run from a copy in {bindir}"


def popen_kwargs(cwd: Path, library_path: Sequence[Path], user: RunAs | None) -> dict[str, Any]:
    """``subprocess`` arguments for initdb and postgres: no stdin, :func:`server_env`, and the
    unprivileged user when this process is root."""
    kwargs: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "cwd": cwd,
        "env": server_env(library_path),
    }
    if user is not None:
        kwargs.update(user.popen_kwargs())
    return kwargs

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
        conn = connect(server, "postgres")
    except driver_errors() as exc:
        return one_line(exc)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchone()
    finally:
        conn.close()
    return None


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) if tail else "(the server log is empty)"


def run_initdb(
    bindir: Path, data_dir: Path, log_path: Path, *, program: str, append: bool,
    popen_kwargs: dict[str, Any], into: Path | None = None,
) -> None:
    """Run ``initdb`` for ``data_dir`` (into ``into`` if given), its output into ``log_path``.

    FatalError, naming ``program`` (the program as the user should see it) and the log's end,
    when it fails or does not finish within :data:`INITDB_TIMEOUT`. It is never left running.
    """
    argv = [str(bindir / "initdb"), "-D", str(into or data_dir), *INITDB_OPTIONS]
    with log_path.open("ab" if append else "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, **popen_kwargs)
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
            f"initdb ({program}) did not finish within {INITDB_TIMEOUT:.0f} s for {data_dir}. "
            f"Its output: {log_tail(log_path)}"
        )
    if code != 0:
        raise FatalError(
            f"initdb ({program}) failed with exit code {code} for {data_dir}. Its output: "
            f"{log_tail(log_path)}"
        )


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
