"""The Django side as a process of its own: ``python -m guard.worker`` in the project's interpreter.

It reads the run's options as JSON on stdin and exits with the check's exit code. It needs only
the standard library, Django and the project's PostgreSQL driver: the git side stays behind in
the interpreter that started it (pre-commit's virtualenv, say).
"""

from __future__ import annotations

import sys


def main() -> int:
    from guard.error_handler import guarded
    from guard.wire import from_json

    options = from_json(sys.stdin.read())
    sys.stdin.close()

    def run() -> int:
        from guard.check import run_check

        return run_check(options)

    return guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
