"""``migration-guard check``: select, plan, provide a database, execute, report.

This is the Django side of the tool: it runs in the project's own interpreter and imports no git.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from guard import project
from guard.config import CheckOptions
from guard.database import cache, throwaway
from guard.database.providers import Provided, provide
from guard.database.server import driver_errors, make_interruptible, one_line
from guard.errors import CHECK_FAILED, PASSED, FatalError
from guard.execution import checks
from guard.execution.roundtrip import Execution
from guard.planning.graph import Plan, load_graph, make_plan, migration_file, state_after
from guard.planning.reversibility import irreversible_operations
from guard.reporting.model import Report
from guard.reporting.progress import Progress
from guard.reporting.writers import write as write_reports
from guard.selection import paths
from guard.types import MigrationKey, Selected, label

if TYPE_CHECKING:
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState


def run_check(options: CheckOptions, *, stdout: TextIO | None = None,
              stderr: TextIO | None = None) -> int:
    started = time.perf_counter()
    stdout = stdout or sys.stdout
    progress = Progress(stderr, verbose=options.verbose)
    name = throwaway.new_name()
    proj = project.load(options, name)
    make_interruptible()
    deleted = paths.deleted_keys(options.deleted)
    loader = load_graph(deleted)
    graph = loader.graph
    report = Report(
        mode="full" if options.full else (options.run_mode or "paths"),
        project_dir=_shown(str(proj.directory), options),
        settings=proj.settings_module,
        last=options.last,
    )
    progress.line(
        f"migration-guard: {report.project_dir} (settings {proj.settings_module}, "
        f"from {proj.settings_origin})"
    )

    report.notes.extend(options.notes)
    squashes = paths.replaced_by(loader)
    for key, path in deleted.items():
        if key in squashes:
            report.notes.append(f"deleted {label(key)}: replaced by the squashed "
                                f"{label(squashes[key])}, fine")
        else:
            report.notes.append(f"deleted {label(key)} ({path}): no remaining migration "
                                "depends on it")
    chosen: dict[MigrationKey, Selected]
    if options.full:
        apps = paths.project_app_labels()
        chosen = paths.select_last(loader, options.last, apps)
        report.notes.append(
            f"full run: every migration from an empty database, then the last {options.last} "
            f"of each project app ({', '.join(sorted(apps)) or 'none'}) back and forth"
        )
    elif options.paths:
        picked = paths.select_paths(loader, options.paths)
        chosen = picked.chosen
        folders = paths.migration_folders()
        report.ignored = [
            (str(p), why) for p, why in picked.ignored
            # From git, only files that look like migrations are worth a warning.
            if not options.run_mode or paths.in_migrations_folder(p, folders)
        ]
        report.notes.extend(picked.notes)
    elif options.run_mode:
        chosen = {}
        report.notes.append("no migration changed: checking that models and migrations agree")
    else:
        raise FatalError(
            "Nothing to check: give migration files (migration-guard check PATH ...) "
            "or --full for the whole project."
        )
    plan = make_plan(graph, chosen)
    report.selected = list(plan.selected)
    for key in plan.order:
        filename = migration_file(graph.nodes[key])
        if filename:
            report.files[key] = _shown(filename, options)
            report.sources[key] = filename
    progress.selection(report)

    # Known failures a team accepts: in config, or marked in the migration file.
    report.accepted = _accepted(plan.order, report, options)
    progress.accepted = set(report.accepted)
    for key, why in report.accepted.items():
        progress.line(f"accepted: {label(key)} ({why}): its failures are reported, not counted")

    # Found before any database work: operations that cannot be reversed.
    cannot_reverse: set[MigrationKey] = set()
    for key in plan.order:
        for found in irreversible_operations(key, graph.nodes[key]):
            accepted = label(key) in options.allow_irreversible or key in report.accepted
            report.irreversible.append((found, accepted))
            cannot_reverse.add(key)
            progress.line(
                ("accepted: " if accepted else "FAILED: ") + found.describe()
            )

    # The state after the base (for a cloned base) and after everything (for the models check):
    # one pass over the history serves both.
    base_state = state_after(graph, plan.base, loader.unmigrated_apps)

    def run_checks() -> None:
        """The checks that need no database; they run while the run's database is cloned."""
        full_state = state_after(graph, plan.order, loader.unmigrated_apps,
                                          start=base_state)
        report.checks = [checks.conflicts(loader), checks.system_checks(),
                         checks.missing_migrations(loader, full_state)]
        for check in report.checks:
            progress.line(f"check: {check.name}: {'ok' if check.ok else 'FAILED'}")

    if plan.order or options.full:
        with provide(
            options.db, project.default_server(proj), docker_image=options.docker_image,
            bindir=options.pg_bindir,
        ) as provided:
            report.database = {
                "provider": provided.provider,
                "server": provided.server.describe(),
                "reason": provided.reason,
            }
            progress.line(f"database: {provided.provider}: {provided.reason}")
            if provided.server.is_local:
                swept = throwaway.sweep(provided.server)
                if swept:
                    progress.line(f"cleaned up {len(swept)} database(s) left by runs that were "
                                  f"killed: {', '.join(swept)}")
            _execute(provided, name, loader, plan, cannot_reverse, report, progress, options,
                     meanwhile=run_checks, base_state=base_state)
    else:
        run_checks()
        report.database = {"provider": "none", "reason": "no migration selected"}

    report.seconds = time.perf_counter() - started
    write_reports(report, options.formats, stdout, github=options.github,
                    environ=os.environ, stderr=stderr)
    return PASSED if report.passed else CHECK_FAILED


def _execute(
    provided: Provided,
    name: str,
    loader: MigrationLoader,
    plan: Plan,
    cannot_reverse: set[MigrationKey],
    report: Report,
    progress: Progress,
    options: CheckOptions,
    *,
    meanwhile: Callable[[], None],
    base_state: ProjectState,
) -> None:
    """Provide the base (cached or built), clone the run's database from it while
    ``meanwhile`` runs, then run the selection forward, backward and forward again."""
    from django.db import connections

    server = provided.server
    keep_options = provided.keep_options
    session = {"lock_timeout": options.lock_timeout,
               "statement_timeout": options.statement_timeout}
    execution = Execution(
        loader,
        connections["default"],
        base=plan.base,
        order=plan.order,
        cannot_reverse=cannot_reverse,
        on_step=progress.step,
        timeouts=session,
    )
    state = None
    template = None
    if plan.base and options.cache_size > 0:
        started = time.perf_counter()
        digest = cache.key(loader, plan.base, project_dir=options.project_dir,
                           server_version=cache.server_version(server),
                           settings=project.base_settings())
        built: list[ProjectState] = []

        def build(building: str) -> bool:
            project.point_databases(server, building, keep_options=keep_options, session=session)
            try:
                result = execution.build_base()
            finally:
                connections.close_all()
            if result is not None:
                built.append(result)
            return result is not None

        found = cache.ensure(server, digest, build, keep=options.cache_size)
        if found is None:
            progress.line(f"base: FAILED: {execution.outcome.base_error}")
            report.outcome = execution.outcome
            return
        template, hit = found
        state = base_state.clone() if hit else built[0]
        execution.outcome.base_count = len(plan.base)
        execution.outcome.base_cached = hit
        execution.outcome.base_seconds = time.perf_counter() - started
    creating = _Background(lambda: throwaway.create_database(server, name, template=template))
    try:
        try:
            meanwhile()
        finally:
            creating.join()
        project.point_databases(server, name, keep_options=keep_options, session=session)
        if template is not None:
            progress.base(execution.outcome.base_count, execution.outcome.base_seconds,
                          cached=execution.outcome.base_cached)
        execution.on_base = progress.base
        try:
            report.outcome = execution.run(state)
        except driver_errors() + _django_errors() as exc:
            # A migration's own errors are caught per step; one escaping here came from our
            # own queries (snapshots, the recorder): the server is the likely cause.
            raise FatalError(
                f"Lost the PostgreSQL server {server.describe()} mid-run: "
                f"{one_line(exc)}. Check that it is running, then run again."
            ) from exc
        if report.outcome.base_error:
            progress.line(f"base: FAILED: {report.outcome.base_error}")
    finally:
        connections.close_all()
        # Also when creating failed or was interrupted half-way: DROP ... IF EXISTS.
        try:
            throwaway.drop_database(server, name)
        except FatalError as exc:
            progress.line(f"warning: could not drop {name}: {exc}")


def _shown(path: str, options: CheckOptions) -> str:
    """A path in an exported commit, shown where it lives in the repository."""
    if options.shown_root and options.shown_root[0] and path.startswith(options.shown_root[0]):
        return options.shown_root[1] + path[len(options.shown_root[0]):]
    return path


class _Background:
    """One call on a thread of its own (a ``CREATE DATABASE`` waits on the server, not on
    Python); ``join`` waits for it and re-raises what it raised."""

    def __init__(self, call: Callable[[], None]) -> None:
        self._error: BaseException | None = None

        def target() -> None:
            try:
                call()
            except BaseException as exc:  # handed to join(), in the calling thread
                self._error = exc

        self._thread = threading.Thread(target=target, name="migration-guard-create", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def _django_errors() -> tuple[type[BaseException], ...]:
    from django.db import utils

    return (utils.OperationalError, utils.InterfaceError)


_MARKER = re.compile(r"^[ \t]*#[ \t]*migration-guard:[ \t]*accept\b[ \t:]*(.*)$", re.MULTILINE)


def _accepted(
    order: Sequence[MigrationKey], report: Report, options: CheckOptions
) -> dict[MigrationKey, str]:
    """Selected migrations whose failures are accepted, with the reason: ``accept`` in the
    config, or a ``# migration-guard: accept <reason>`` comment in the migration file."""
    configured = dict(options.accept)
    found: dict[MigrationKey, str] = {}
    for key in order:
        if label(key) in configured:
            found[key] = configured[label(key)] or "accept in [tool.migration-guard]"
            continue
        source = report.sources.get(key) or report.files.get(key)
        try:
            text = Path(source).read_text(encoding="utf-8") if source else ""
        except (OSError, UnicodeDecodeError):
            continue
        match = _MARKER.search(text)
        if match:
            found[key] = match.group(1).strip() or "marked in the migration file"
    return found
