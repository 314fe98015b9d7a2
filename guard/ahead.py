"""The Django side started ahead of git: Django's start-up and the graph while git works out
what changed, on the other core.

In branch and push mode the run cannot know what to test before git has said it, and git (with
GitPython's import) takes 0.05-0.3 s, while Django's start-up and the migration graph take most
of the run. So once the options are known, :func:`start` begins the Django side at once: in a
copy of this process made with ``fork()`` where the project's interpreter is this one (on
Linux), else in the project's interpreter (``python -m guard.worker``). It starts Django and
loads the graph (:func:`guard.check.prepare`), then waits for the options git decided on
(:meth:`Ahead.go`), or is stopped when there is nothing to test or the tree to test is another
one (:meth:`Ahead.cancel`): it has made nothing by then, no database and no file. What its
start-up says is said only if the run goes on.

The Django side runs in a session of its own, so that a Ctrl-C in the terminal reaches it
through this process, once (as for :func:`guard.interpreter.run_worker`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from typing import IO, Any

from guard import timings
from guard.config import CheckOptions
from guard.wire import from_json, to_json, worker_environment, worker_request


def serve(initial: CheckOptions, stream: IO[bytes]) -> int:
    """In the Django side: prepare for ``initial``, then run the check with the options read
    from ``stream`` (nothing there: stop, quietly)."""
    from guard.check import prepare, run_check
    from guard.error_handler import guarded

    prepared: list[Any] = []
    failed: list[BaseException] = []
    try:
        prepared.append(prepare(initial))
    except Exception as exc:  # said only if the run goes on
        failed.append(exc)
    with timings.phase("waiting", "for git's answer"):
        text = stream.read().decode()
    if not text.strip():
        return 0
    options = from_json(text)
    timings.merge(options.clock)

    def run() -> int:
        if failed:
            raise failed[0]
        return run_check(options, prepared=prepared[0])

    return guarded(run)


class Ahead:
    """The Django side, started; :meth:`go` or :meth:`cancel` it."""

    def __init__(self, pid: int, stream: IO[bytes], process: subprocess.Popen[bytes] | None,
                 note: str = "") -> None:
        self.pid = pid
        self.note = note
        """Said when it goes on: in which interpreter Django runs."""
        self._stream: IO[bytes] | None = stream
        self._process = process

    def go(self, options: CheckOptions) -> int:
        """Run the check with ``options`` there; its exit code."""
        import dataclasses

        stream, self._stream = self._stream, None
        assert stream is not None
        if self.note:
            print(f"migration-guard: {self.note}", file=sys.stderr, flush=True)
        final = dataclasses.replace(options, clock=timings.exported())
        with contextlib.suppress(BrokenPipeError):
            stream.write(to_json(final).encode())
        with contextlib.suppress(BrokenPipeError):
            stream.close()
        return self._wait()

    def cancel(self) -> None:
        """Stop it: there is nothing to test there."""
        if self._stream is None:
            return
        stream, self._stream = self._stream, None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(BrokenPipeError):
            stream.close()
        self._wait()

    def _wait(self) -> int:
        """Its exit code; Ctrl-C and SIGTERM meanwhile are passed on to it, once each."""
        def forward(signum: int, frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

        main = threading.current_thread() is threading.main_thread()
        previous = ([signal.signal(signal.SIGINT, forward), signal.signal(signal.SIGTERM, forward)]
                    if main else [])
        try:
            if self._process is not None:
                code = self._process.wait()
            else:
                code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        finally:
            if previous:
                signal.signal(signal.SIGINT, previous[0])
                signal.signal(signal.SIGTERM, previous[1])
        return 128 - code if code < 0 else code


def start(options: CheckOptions, python: str, *, current: bool, note: str = ""
          ) -> Ahead | None:
    """Start the Django side for ``options`` in ``python`` (``current``: this interpreter),
    or None where it cannot be (then the run starts it once git has answered)."""
    if current:
        return _fork(options)
    return _spawn(options, python, note)


def _fork(options: CheckOptions) -> Ahead | None:
    if not (sys.platform.startswith("linux") and hasattr(os, "fork")
            and threading.active_count() == 1):
        return None
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the Django side: never returns
        code = 3
        try:
            os.close(write)
            os.setsid()
            with os.fdopen(read, "rb") as stream:
                code = serve(options, stream)
        finally:
            from guard.error_handler import leave

            leave(code)
    os.close(read)
    return Ahead(pid, os.fdopen(write, "wb"), None)


def _spawn(options: CheckOptions, python: str, note: str) -> Ahead | None:
    import dataclasses

    try:
        child = subprocess.Popen([python, "-m", "guard.worker"], stdin=subprocess.PIPE,
                                 env=worker_environment(), start_new_session=True)
    except OSError:
        return None
    assert child.stdin is not None
    child.stdin.write(worker_request(dataclasses.replace(options, clock=timings.exported()),
                                     ahead=True))
    child.stdin.flush()
    return Ahead(child.pid, child.stdin, child, note)
