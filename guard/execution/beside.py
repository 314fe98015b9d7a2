"""Work done beside the main line, in a forked copy of this process: the once-per-run checks.

Django's system checks and the models-against-migrations check need no database and take as
long as a large part of Django's own start-up; the round trip needs them done only by the end of
the run. :class:`Beside` runs such a call in a child made with ``os.fork()`` right away, so that it
gets a core of its own while the main line provides the database and runs the round trip, and
``result()`` hands back what it returned (or raises what it raised) and its phases for the
timings. The child shares nothing that matters with the main line: it is forked before any
thread or database connection exists, it writes only its result (pickled, on a pipe), its Ctrl-C
and SIGTERM end it at once, and it leaves with ``os._exit`` (no ``finally``, no buffers flushed,
no connection closed twice).

Where forking is not safe (not Linux, where system libraries may not survive a fork without
exec; or threads already running), the call runs in this process when the main line waits for
something else (:meth:`Beside.idle`: while the run's database is cloned) or is asked for.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

from guard import timings

T = TypeVar("T")
STOP_TIMEOUT = 30.0
"""How long a child that cleans up is given to stop once asked."""


def can_fork() -> bool:
    """Whether a call can be forked off safely here and now."""
    return (sys.platform.startswith("linux") and hasattr(os, "fork")
            and threading.active_count() == 1)


class Beside(Generic[T]):
    """``call()``, forked off now (or run now where it cannot be); use as a context manager,
    which ends a child whose result nobody asked for."""

    def __init__(self, call: Callable[[], T], *, name: str, cleans_up: bool = False) -> None:
        """``cleans_up``: the call has something to undo when stopped (a database of its own):
        Ctrl-C and SIGTERM reach its ``finally`` blocks, and :meth:`cancel` asks it to stop
        with SIGTERM before it is killed."""
        self.name = name
        self.cleans_up = cleans_up
        self._pid: int | None = None
        self._reaped = False
        self._read: int | None = None
        self._done: tuple[bool, object, list[timings.Phase]] | None = None
        self._call: Callable[[], T] | None = None
        if not can_fork():
            self._call = call  # run by idle() or result(), in this process
            return
        for stream in (sys.stdout, sys.stderr):  # nothing buffered is written twice
            stream.flush()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read)
            _child(call, write, cleans_up=cleans_up)
        os.close(write)
        self._pid, self._read = pid, read

    @property
    def forked(self) -> bool:
        return self._pid is not None

    def idle(self) -> None:
        """The main line has nothing to do for a while: a call that was not forked runs now."""
        if self._call is not None:
            call, self._call = self._call, None
            self._done = _run(call)

    def result(self) -> T:
        """What the call returned; what it raised is raised here. Its phases join the run's,
        beside the main line when it was forked."""
        self.idle()
        if self._done is None:
            with timings.phase("waiting", f"for the {self.name} beside the main line"):
                self._done = self._collect()
        ok, value, phases = self._done
        if self.forked:
            for phase in phases:
                timings.RUN.phases.append(timings.Phase(
                    phase.name, phase.started, phase.seconds, phase.detail, phase.within,
                    parallel=True))
            self._done = (ok, value, [])
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value  # type: ignore[return-value] # what call() returned, through pickle

    def _collect(self) -> tuple[bool, object, list[timings.Phase]]:
        assert self._read is not None and self._pid is not None
        chunks = []
        with os.fdopen(self._read, "rb") as pipe:
            self._read = None
            while chunk := pipe.read(1 << 16):
                chunks.append(chunk)
        _, status = os.waitpid(self._pid, 0)
        self._reaped = True
        try:
            ok, value, phases = pickle.loads(b"".join(chunks))
        except Exception:
            code = os.waitstatus_to_exitcode(status)
            return False, RuntimeError(
                f"the {self.name} beside the main line ended without a result (exit status "
                f"{code})"), []
        return bool(ok), value, list(phases)

    def cancel(self) -> None:
        """End the child if its result was never collected."""
        if self._pid is None or self._reaped:
            return
        try:
            if self.cleans_up:
                os.kill(self._pid, signal.SIGTERM)
                deadline = time.monotonic() + STOP_TIMEOUT
                while os.waitpid(self._pid, os.WNOHANG) == (0, 0):
                    if time.monotonic() > deadline:
                        os.kill(self._pid, signal.SIGKILL)
                        os.waitpid(self._pid, 0)
                        break
                    time.sleep(0.02)
            else:
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        if self._read is not None:
            os.close(self._read)
            self._read = None
        self._reaped = True

    def __enter__(self) -> Beside[T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cancel()


def _run(call: Callable[[], T]) -> tuple[bool, object, list[timings.Phase]]:
    try:
        return True, call(), []
    except Exception as exc:
        return False, exc, []


def _child(call: Callable[[], object], write: int, *, cleans_up: bool) -> None:
    """In the forked child: run ``call``, write the pickled outcome, and leave at once."""
    code = 0
    try:
        if not cleans_up:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        timings.RUN.phases, timings.RUN.tallies = [], {}
        try:
            outcome: tuple[bool, object, list[timings.Phase]] = (True, call(), [])
        except Exception as exc:
            outcome = (False, exc, [])
        outcome = (outcome[0], outcome[1], timings.RUN.ordered())
        try:
            data = pickle.dumps(outcome)
        except Exception:  # an unpicklable result or exception: its text, then
            error = outcome[1]
            text = ("".join(traceback.format_exception(type(error), error, error.__traceback__))
                    if isinstance(error, BaseException) else repr(error)[:2000])
            data = pickle.dumps((False, RuntimeError(
                f"the work beside the main line gave what cannot be handed back: {text}"), []))
        with os.fdopen(write, "wb") as pipe:
            pipe.write(data)
    except BaseException:
        code = 1
    finally:
        os._exit(code)
