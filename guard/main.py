"""The ``migration-guard`` command: parse, dispatch, and the one error handler."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return errors.USAGE_ERROR
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
    except KeyboardInterrupt:
        print("migration-guard: interrupted; the databases it created were dropped.",
              file=sys.stderr)
        return errors.INTERRUPTED
    except Exception:
        print(
            "migration-guard: unexpected error (a bug in migration-guard). Please report it "
            f"with the traceback below at {errors.ISSUES_URL}\n" + traceback.format_exc(),
            file=sys.stderr,
        )
        return errors.UNEXPECTED_ERROR
