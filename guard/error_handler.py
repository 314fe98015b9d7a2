"""The one error handler: every command runs under :func:`guarded`.

A :class:`~guard.errors.FatalError` is one paragraph and its exit code (2, or 1 for the project's
own faults); Ctrl-C is 130 and SIGTERM 143, after every ``finally`` has dropped and stopped what
the run created; anything else is a bug: exit 3, its traceback in a log file, and where to report
it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn

from guard import errors, version


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so that every ``finally`` cleans up."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _log_bug() -> Path | None:
    """Write the traceback of the exception being handled to a log file; its path or None."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = cache / "migration-guard" / "migration-guard.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"### {time.strftime('%Y-%m-%d %H:%M:%S')} migration-guard {version()}, "
                      f"Python {sys.version.split()[0]}, argv {sys.argv!r}\n")
            log.write(traceback.format_exc() + "\n")
    except OSError:
        return None
    return path


def _fresh_line() -> str:
    """On a terminal, wipe a live progress line the message would otherwise continue."""
    try:
        return "\r\033[K" if sys.stderr.isatty() else ""
    except (AttributeError, ValueError):
        return ""


def guarded(run: Callable[[], int]) -> int:
    """Run a command under the one error handler: exit codes 2, 3, 130 and 143 come from here."""
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        return run()
    except errors.FatalError as exc:
        print(f"{_fresh_line()}migration-guard: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print(f"{_fresh_line()}migration-guard: terminated; what it created was dropped and "
              "stopped.", file=sys.stderr)
        return errors.TERMINATED
    except KeyboardInterrupt:
        print(f"{_fresh_line()}migration-guard: interrupted; what it created was dropped and "
              "stopped.", file=sys.stderr)
        return errors.INTERRUPTED
    except Exception as exc:
        log = _log_bug()
        where = f"The traceback is in {log}." if log else "\n" + traceback.format_exc()
        print(
            f"{_fresh_line()}migration-guard: unexpected error, a bug in migration-guard: "
            f"{type(exc).__name__}: {exc}. {where} Please report it at {errors.ISSUES_URL} "
            "with that traceback.",
            file=sys.stderr,
        )
        return errors.UNEXPECTED_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def leave(code: int) -> NoReturn:
    """End the process with ``code`` once its output is written and its ``atexit`` handlers
    have run, without the interpreter's own teardown: freeing every object of a Django
    project one by one took 0.15-0.2 s after django-oscar's verdict, longer than anything the
    run does after Django's start-up. Nothing of ours is left to it: every database, folder
    and process is dealt with in a ``finally`` before this, and threads are joined."""
    import atexit
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nobody reads any more
            stream.flush()
    atexit._run_exitfuncs()
    os._exit(code)
