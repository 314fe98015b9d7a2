"""The Django side as a process of its own: ``python -m guard.worker`` in the project's interpreter.

It reads the run's options as JSON on stdin (:func:`guard.interpreter.worker_request`) and
exits with the check's exit code. It needs only
the standard library, Django and the project's PostgreSQL driver: the git side stays behind in
the interpreter that started it (pre-commit's virtualenv, say).
"""

from __future__ import annotations

import sys


def main() -> int:
    import json

    from guard import timings
    from guard.error_handler import guarded
    from guard.wire import from_json

    header = json.loads(sys.stdin.buffer.readline() or b"{}")
    if header.get("ahead"):  # started before git answered: the options it decided on follow
        from guard.ahead import serve

        initial = from_json(sys.stdin.buffer.readline().decode())
        timings.adopt(initial.clock)
        return serve(initial, sys.stdin.buffer)
    options = from_json(sys.stdin.buffer.read().decode())
    sys.stdin.close()
    timings.adopt(options.clock)

    def run() -> int:
        from guard.check import run_check

        return run_check(options)

    return guarded(run)


if __name__ == "__main__":
    from guard.error_handler import leave

    leave(main())
