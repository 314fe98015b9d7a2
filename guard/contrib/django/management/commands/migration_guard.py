"""``python manage.py migration_guard [PATH ...] [options]``: ``migration-guard check`` for the
project that is already running.

The options are those of ``migration-guard check`` (defined once, in :mod:`guard.main`), minus
``--settings`` and ``--project-dir``: Django already knows its settings (``--settings`` is
Django's own option here), and the project is the folder of ``manage.py``. Django's
``-v``/``--verbosity`` 2 or more means ``--verbose``.

Django runs in this process, so the check does too: never in a worker. One process starts
Django once, so one run per command: the git modes work as with ``migration-guard check``, but a
pushed commit that is not checked out cannot be tested from here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandParser

from guard import errors
from guard.config import CheckOptions, build_options, find_project_dir
from guard.error_handler import guarded
from guard.errors import FatalError
from guard.main import _add_check_options

NOT_HERE = {"settings", "project_dir"}
"""``check`` options that the running project answers."""

FORWARDED = {
    # the command's option (its dest) -> build_options' argument, as guard.main._check passes it
    "full": "full",
    "last": "last",
    "db": "db",
    "format": "formats",
    "output": "output",
    "github": "github",
    "mode": "mode",
    "base": "base",
    "semantic_diff": "semantic_diff",
    "verbose": "verbose",
    "timings": "timings",
    "databases": "databases",
    "rows": "rows",
    "data_seed": "data_seed",
    "safety": "safety",
    "fail_on": "fail_on",
    "cache_dir": "cache_dir",
    "shard": "shard",
    "jobs": "jobs",
    "stats": "stats",
    "max_blocking_seconds": "max_blocking_seconds",
}


class _WithoutKnownOptions:
    """The command's parser as ``_add_check_options`` sees it: the options the running project
    answers are left out, and flags Django already has (``-v``) are dropped from an option's
    flags, so ``--verbose`` stays and ``-v`` is Django's ``--verbosity``."""

    def __init__(self, parser: CommandParser) -> None:
        self.parser = parser

    def add_argument(self, *flags: str, **kwargs: Any) -> argparse.Action | None:
        dest = kwargs.get("dest") or _dest_of(flags)
        if dest in NOT_HERE:
            return None
        known = self.parser._option_string_actions
        kept = [flag for flag in flags if flag not in known]
        if not kept:
            return None
        return self.parser.add_argument(*kept, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parser, name)


def _dest_of(flags: tuple[str, ...]) -> str:
    long = [flag for flag in flags if flag.startswith("--")]
    return (long[0] if long else flags[0]).lstrip("-").replace("-", "_")


def check_option_defaults() -> dict[str, Any]:
    """Each ``migration-guard check`` option (by dest) and its default."""
    scratch = argparse.ArgumentParser(add_help=False)
    _add_check_options(scratch)
    return {
        action.dest: action.default for action in scratch._actions
        if action.option_strings and action.dest != argparse.SUPPRESS
    }


class Command(BaseCommand):
    help = (
        "Test the given migration files plus every migration that depends on them, on a "
        "PostgreSQL database of migration-guard's own: forward, backward in reverse order, "
        "forward again. --full tests every migration from an empty database and the last N of "
        "each project app. Without PATH, git says what changed. The same as "
        "`migration-guard check`, for this project's settings. Exit status: 0 passed, 1 a check "
        "failed, 2 a usage or environment error."
    )
    # The checks are ours to run, on our own database, never on the project's.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", metavar="PATH", help="migration files to test")
        _add_check_options(cast(argparse.ArgumentParser, _WithoutKnownOptions(parser)))

    def handle(self, *args: Any, **options: Any) -> None:
        stdout = _stream(self.stdout, sys.stdout)
        stderr = _stream(self.stderr, sys.stderr)
        code = guarded(lambda: run(options, stdout=stdout, stderr=stderr))
        if code != errors.PASSED:
            raise SystemExit(code)


def _stream(wrapper: object, fallback: TextIO) -> TextIO:
    """The stream under Django's OutputWrapper: the report is written as it is, without the
    wrapper's line endings and colours."""
    return cast(TextIO, getattr(wrapper, "_out", fallback))


def project_dir(base_dir: object = None, argv0: str | None = None, cwd: Path | None = None
                ) -> Path:
    """The running project's folder: the one of ``manage.py`` when that is what runs, else
    ``BASE_DIR`` when it holds ``manage.py``, else the nearest ``manage.py`` from the current
    folder upwards, else ``BASE_DIR``, else the current folder."""
    here = (cwd or Path.cwd()).resolve()
    if argv0 and Path(argv0).name == "manage.py" and Path(argv0).is_file():
        return Path(argv0).resolve().parent
    base = Path(str(base_dir)).resolve() if isinstance(base_dir, (str, os.PathLike)) else None
    if base is not None and (base / "manage.py").is_file():
        return base
    found = find_project_dir(here)
    if (found / "manage.py").is_file():
        return found
    if base is not None and base.is_dir():
        return base
    return here


def options_for(given: Mapping[str, Any]) -> CheckOptions:
    """The check's options from the command's parsed ones."""
    from django.conf import settings

    defaults = check_option_defaults()
    forwarded: dict[str, Any] = {}
    for dest, default in defaults.items():
        if dest in NOT_HERE or dest not in given:
            continue
        if dest in FORWARDED:
            forwarded[FORWARDED[dest]] = given[dest]
        elif given[dest] != default:
            raise FatalError(
                f"--{dest.replace('_', '-')} is not supported by `manage.py migration_guard` "
                "yet; run `migration-guard check` for it."
            )
    forwarded["verbose"] = bool(given.get("verbose")) or int(given.get("verbosity", 1)) >= 2
    return build_options(
        project_dir=project_dir(
            getattr(settings, "BASE_DIR", None), sys.argv[0] if sys.argv else None
        ),
        paths=list(given.get("paths") or ()),
        settings=settings.SETTINGS_MODULE or None,
        **forwarded,
    )


def run(given: Mapping[str, Any], *, stdout: TextIO, stderr: TextIO) -> int:
    """``migration-guard check`` in this process, where Django already runs."""
    from guard import project, timings
    from guard.check import run_check

    timings.reset()
    timings.add("start-up", timings.RUN.now(), started=0.0,
                detail="manage.py: the interpreter and Django's start-up")
    options = options_for(given)

    def check(run_options: CheckOptions) -> int:
        try:
            return run_check(run_options, stdout=stdout, stderr=stderr)
        finally:
            project.release()

    if options.paths or options.full:
        return check(options)
    return _from_git(options, check, stderr)


def _from_git(options: CheckOptions, check: Callable[[CheckOptions], int], stderr: TextIO
              ) -> int:
    """No PATH: git says what to test, as for ``migration-guard check``; one run at most."""
    try:
        from guard.selection import changes
    except ImportError as exc:  # pragma: no cover - GitPython is a dependency
        raise FatalError(
            f"Without PATH, git says what to test, which needs GitPython ({exc}): install "
            "migration-guard with its dependencies, or give the migration files."
        ) from exc
    decision = changes.decide(options, os.environ)
    if not decision.runs:
        print(f"migration-guard: {decision.message}", file=stderr, flush=True)
        return errors.PASSED
    if len(decision.runs) > 1:
        raise FatalError(
            f"{len(decision.runs)} trees to test, and Django starts once per process: run "
            "`migration-guard check` (or the pre-push hook) instead of `manage.py "
            "migration_guard`."
        )
    with changes.materialised(decision.runs[0]) as run_options:
        if run_options.project_dir != options.project_dir:
            raise FatalError(
                "The pushed commit is not the one checked out, and this process already runs "
                "the checked-out code: run `migration-guard check` (or the pre-push hook) "
                "instead of `manage.py migration_guard`."
            )
        return check(run_options)
