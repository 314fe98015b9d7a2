"""The ``migration-guard`` command: parse and dispatch, under the one error handler."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from guard import errors, timings, version

if TYPE_CHECKING:
    from guard import ahead
    from guard.config import CheckOptions
from guard.error_handler import guarded, leave


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked for (importlib.metadata costs ~20 ms)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(f"migration-guard {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migration-guard",
        description="Test Django migrations forward, backward and forward again on a real "
        "PostgreSQL, in databases it creates and drops itself.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="test migrations (the given files plus their dependents, or --full)",
        description="Test the given migration files plus every migration that depends on them: "
        "forward, backward in reverse order, forward again. --full tests every migration "
        "from an empty database and the last N of each project app.",
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="migration files to test")
    _add_check_options(check)
    pre_push = commands.add_parser(
        "pre-push",
        help="the git pre-push hook: test the migrations in the pushed commits",
        description="Run by hooks/pre-push with git's arguments; reads the pushed refs on stdin.",
    )
    pre_push.add_argument("remote", nargs="?", default="origin", help="the remote pushed to")
    pre_push.add_argument("url", nargs="?", help="its URL (unused)")
    _add_check_options(pre_push)
    install = commands.add_parser(
        "install",
        help="install the plain git pre-push hook (for teams without pre-commit)",
        description="Put hooks/pre-push in this repository's hooks folder (core.hooksPath and "
        "worktrees respected); an existing pre-push hook is kept and runs first.",
    )
    install.add_argument("--repo", type=Path, default=Path("."), metavar="DIR",
                         help="a folder inside the repository (default: the current one)")
    clean = commands.add_parser(
        "clean",
        help="drop the cached base states and remove the warm local cluster",
        description="Drop every migration_guard_cache_* database on the servers runs use, "
        "their spare clones, the databases of runs that died, and the warm local cluster.",
    )
    clean.add_argument("--db", metavar="auto|settings|local|URL",
                       help="which server to clean (default: every one found)")
    clean.add_argument("--settings", metavar="MODULE", help="Django settings module")
    clean.add_argument("--project-dir", type=Path, metavar="DIR",
                       help="the folder with manage.py (default: found from the current folder)")
    stats = commands.add_parser(
        "stats", help="write production's table sizes for estimates (check --stats FILE)",
        description="Connect read-only to the database at URL (production or a replica) and "
        "write each table's row estimate and heap, TOAST and index sizes, read from the "
        "catalogs only (no table is read), as JSON for check --stats FILE.")
    stats.add_argument("--db", required=True, metavar="URL",
                       help="postgres://ROLE@HOST:PORT/DATABASE (a role with CONNECT is enough)")
    stats.add_argument("--output", metavar="FILE", help="write it to FILE (default: stdout)")
    report = commands.add_parser(
        "report", help="work with JSON reports (merge the shards of a full run)",
        description="Work with the JSON reports that check --format json=FILE writes.")
    actions = report.add_subparsers(dest="action", metavar="ACTION", required=True)
    merge = actions.add_parser(
        "merge", help="merge the shards' JSON reports into one verdict and report",
        description="Merge the JSON reports of check --full --shard I/N (every shard of one "
        "run) into one report. Exit 1 if a shard failed, 2 if one is missing or two overlap.")
    merge.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json")
    _add_report_options(merge)
    return parser


def _add_report_options(command: argparse.ArgumentParser) -> None:
    """Where reports go: the same for check and report merge."""
    command.add_argument("--format", action="append", metavar="FORMAT[=FILE]",
                         help="a report: text (default), json, junit, sarif (code scanning), "
                         "gitlab (Code Quality) or markdown (a pull request comment), on stdout "
                         "or with =FILE in that file; repeat for several (one on stdout)")
    command.add_argument("--output", metavar="FILE",
                         help="write the report that would go to stdout to FILE instead")
    command.add_argument("--no-github", dest="github", action="store_false",
                         help="under GitHub Actions, print no workflow annotations and write no "
                         "step summary")


def _add_check_options(check: argparse.ArgumentParser) -> None:
    check.add_argument("--full", action="store_true",
                       help="every migration from scratch, system checks, then the last N of "
                       "each project app backward and forward again")
    check.add_argument("--last", type=int, metavar="N",
                       help="how many migrations per app --full rolls back (default 5)")
    check.add_argument("--jobs", type=int, metavar="N",
                       help="run up to N independent parts of the round trip at once, each on "
                       "a clone of the base (default: the number of cores; 1: one at a time)")
    check.add_argument("--shard", metavar="I/N",
                       help="with --full: run the I-th of N parts of the full run, split by "
                       "app (merge their JSON reports with 'migration-guard report merge')")
    check.add_argument("--settings", metavar="MODULE", help="Django settings module")
    check.add_argument("--project-dir", type=Path, metavar="DIR",
                       help="the folder with manage.py (default: found from the current folder)")
    check.add_argument("--db", metavar="auto|settings|local|docker|URL",
                       help="where PostgreSQL comes from (default auto)")
    check.add_argument("--database", dest="databases", action="append", metavar="ALIAS",
                       help="test the migrations of this DATABASES alias; repeat for several "
                       "(default: every alias Django would migrate)")
    check.add_argument("--rows", type=int, metavar="N",
                       help="rows generated per model in the base before the selection goes "
                       "forward (default 3; 0 for none)")
    check.add_argument("--data-seed", type=int, metavar="N",
                       help="the seed of the generated rows: the same seed makes the same rows "
                       "(default 0)")
    check.add_argument("--fail-on", action="append", metavar="KIND[,KIND...]",
                       help="make forward findings of these kinds fail the run: rewrite, scan, "
                       "blocking-index, lock; backward:KIND for a rollback's (default: findings "
                       "are reported, not failures)")
    check.add_argument("--stats", metavar="FILE",
                       help="production's table sizes (made by 'migration-guard stats'): each "
                       "finding gets an estimate of how long it blocks its table there")
    check.add_argument("--max-blocking-seconds", metavar="S",
                       help="with --stats: a finding fails only where its estimated blocking "
                       "time is over S seconds (of the kinds --fail-on gives, else every kind)")
    check.add_argument("--cache-dir", metavar="DIR",
                       help="keep a portable copy of each cached base in DIR and restore bases "
                       "from it on a server that lacks them (for CI caches)")
    check.add_argument("--no-safety", dest="safety", action="store_false", default=None,
                       help="do not measure locks, rewrites and scans")
    check.add_argument("--mode", choices=("auto", "changed", "full"), default="auto",
                       help="with no PATH: test what changed in git, or the full run "
                       "(default auto: full in CI or when no base is found)")
    check.add_argument("--base", metavar="REF",
                       help="the branch to compare with (default: the remote's default branch)")
    check.add_argument("--no-semantic-diff", dest="semantic_diff", action="store_false",
                       default=None,
                       help="select modified migrations even when only comments, formatting, "
                       "docstrings or annotations changed")
    _add_report_options(check)
    check.add_argument("-v", "--verbose", action="store_true", help="say more")
    check.add_argument("--timings", action="store_true",
                       help="say where the run's time went, phase by phase (-v says it too)")


def run() -> None:
    """The console command: :func:`main`, then out at once (see :func:`leave`)."""
    leave(main())


def main(argv: Sequence[str] | None = None) -> int:
    timings.reset()
    timings.add("start-up", timings.RUN.now(), started=0.0,
                detail="the interpreter and migration-guard's imports")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return errors.USAGE_ERROR
    if args.command == "check":
        return guarded(lambda: _check(args))
    if args.command == "pre-push":
        return guarded(lambda: _pre_push(args))
    if args.command == "clean":
        return guarded(lambda: _clean(args))
    if args.command == "stats":
        from guard.safety.stats import command

        return guarded(lambda: command(args.db, args.output))
    if args.command == "report":
        return guarded(lambda: _merge(args))
    if args.command == "install":
        from guard.install import install

        return guarded(lambda: install(args.repo))
    raise AssertionError(args.command)  # pragma: no cover - argparse restricts commands


def _check(args: argparse.Namespace, push_lines: list[str] | None = None) -> int:
    from guard.config import build_options

    options = build_options(
        project_dir=args.project_dir,
        paths=getattr(args, "paths", ()),
        full=args.full,
        last=args.last,
        settings=args.settings,
        db=args.db,
        formats=args.format,
        output=args.output,
        github=args.github,
        verbose=args.verbose,
        timings=args.timings,
        mode=args.mode,
        base=args.base,
        semantic_diff=args.semantic_diff,
        databases=args.databases,
        rows=args.rows,
        data_seed=args.data_seed,
        safety=args.safety,
        fail_on=args.fail_on,
        cache_dir=args.cache_dir,
        shard=args.shard,
        jobs=args.jobs,
        stats=args.stats,
        max_blocking_seconds=args.max_blocking_seconds,
    )
    from guard import interpreter

    if options.paths or (options.full and push_lines is None):
        return interpreter.run_django_side(options)
    # Django starts while git works out what to test (see guard.ahead).
    early = interpreter.start_ahead(options)
    try:
        from guard.selection import changes

        with timings.phase("git", "what changed, with GitPython"):
            decision = changes.decide(options, os.environ, push_lines=push_lines,
                                      remote=getattr(args, "remote", "origin"))
        if not decision.runs:
            print(f"migration-guard: {decision.message}", file=sys.stderr)
            return errors.PASSED
        worst = errors.PASSED
        for run in decision.runs:
            with changes.materialised(run) as run_options:
                if early is not None and _same_tree(run_options, options, decision.runs):
                    code = early.go(run_options)
                else:
                    _cancel(early)
                    code = interpreter.run_django_side(
                        run_options, fresh_process=len(decision.runs) > 1
                    )
                early = None
            if code in (errors.INTERRUPTED, errors.TERMINATED):
                return code
            worst = max(worst, code)
        return worst
    finally:
        _cancel(early)


def _same_tree(run: CheckOptions, started: CheckOptions, runs: Sequence[object]) -> bool:
    """Whether the Django side started ahead can run ``run``: the one run, in the tree and
    settings it was started with."""
    return (len(runs) == 1 and run.project_dir == started.project_dir
            and run.settings == started.settings)


def _cancel(early: ahead.Ahead | None) -> None:
    if early is not None:
        early.cancel()


def _clean(args: argparse.Namespace) -> int:
    from guard.clean import clean
    from guard.config import build_options

    options = build_options(
        project_dir=args.project_dir, paths=(), full=False, last=None, settings=args.settings,
        db=args.db,
    )
    return clean(options)


def _merge(args: argparse.Namespace) -> int:
    from guard.reporting.destinations import parse_formats
    from guard.reporting.merge import merge
    from guard.reporting.writers import write

    formats = parse_formats(args.format or [], args.output, Path.cwd())
    report, lines = merge(args.reports)
    for line in lines:
        print(f"migration-guard: {line}", file=sys.stderr)
    write(report, formats, sys.stdout, github=args.github, environ=os.environ)
    return errors.PASSED if report.passed else errors.CHECK_FAILED


def _pre_push(args: argparse.Namespace) -> int:
    """The plain git pre-push hook: git passes the remote and the pushed refs on stdin."""
    lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
    return _check(args, push_lines=lines)
