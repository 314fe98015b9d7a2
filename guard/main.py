"""The ``migration-guard`` command: parse, dispatch, and the one error handler."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from guard import errors


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("migration-guard")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migration-guard",
        description="Test Django migrations forward, backward and forward again on a real "
        "PostgreSQL, in databases it creates and drops itself.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="test migrations (the given files plus their dependents, or --full)",
        description="Test the given migration files plus every migration that depends on them: "
        "forward, backward in reverse order, forward again. --full tests every migration "
        "from an empty database and the last N of each project app.",
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="migration files to test")
    check.add_argument("--full", action="store_true",
                       help="every migration from scratch, system checks, then the last N of "
                       "each project app backward and forward again")
    check.add_argument("--last", type=int, metavar="N",
                       help="how many migrations per app --full rolls back (default 5)")
    check.add_argument("--settings", metavar="MODULE", help="Django settings module")
    check.add_argument("--project-dir", type=Path, metavar="DIR",
                       help="the folder with manage.py (default: found from the current folder)")
    check.add_argument("--db", metavar="auto|settings|local|docker|URL",
                       help="where PostgreSQL comes from (default auto)")
    check.add_argument("--format", choices=("text", "json"), default="text",
                       help="report format (default text)")
    check.add_argument("--output", metavar="FILE", help="write the report to FILE")
    check.add_argument("-v", "--verbose", action="store_true", help="say more")
    return parser


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
            log.write(f"### {time.strftime('%Y-%m-%d %H:%M:%S')} migration-guard {_version()}, "
                      f"Python {sys.version.split()[0]}, argv {sys.argv!r}\n")
            log.write(traceback.format_exc() + "\n")
    except OSError:
        return None
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return errors.USAGE_ERROR
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.command == "check":
            from guard.check import run_check
            from guard.config import build_options

            options = build_options(
                project_dir=args.project_dir,
                paths=args.paths,
                full=args.full,
                last=args.last,
                settings=args.settings,
                db=args.db,
                output_format=args.format,
                output=args.output,
                verbose=args.verbose,
            )
            return run_check(options)
        raise AssertionError(args.command)  # pragma: no cover - argparse restricts commands
    except errors.FatalError as exc:
        print(f"migration-guard: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("migration-guard: terminated; what it created was dropped and stopped.",
              file=sys.stderr)
        return errors.TERMINATED
    except KeyboardInterrupt:
        print("migration-guard: interrupted; what it created was dropped and stopped.",
              file=sys.stderr)
        return errors.INTERRUPTED
    except Exception as exc:
        log = _log_bug()
        where = f"The traceback is in {log}." if log else "\n" + traceback.format_exc()
        print(
            f"migration-guard: unexpected error, a bug in migration-guard: "
            f"{type(exc).__name__}: {exc}. {where} Please report it at {errors.ISSUES_URL} "
            "with that traceback.",
            file=sys.stderr,
        )
        return errors.UNEXPECTED_ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)
