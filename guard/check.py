"""``migration-guard check``: select, plan, provide a database, execute, report.

This is the Django side of the tool: it runs in the project's own interpreter and imports no git.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from guard import imported, project, timings
from guard.config import CheckOptions
from guard.database import throwaway
from guard.database.aliases import Aliases, classify
from guard.database.providers import Provided, can_create_databases
from guard.database.server import Server, make_interruptible
from guard.errors import CHECK_FAILED, PASSED, FatalError
from guard.execution import checks, routing, runs, throwaways
from guard.execution.beside import Beside
from guard.execution.outcome import Outcome
from guard.execution.targets import Settings, Target
from guard.planning import accepted as acceptance
from guard.planning import shards
from guard.planning.graph import Plan, load_graph, make_plan, migration_file, state_after
from guard.planning.reversibility import irreversible_operations
from guard.reporting.model import Report
from guard.reporting.progress import Progress
from guard.reporting.writers import write as write_reports
from guard.rows.seeding import RowSettings
from guard.selection import paths
from guard.types import MigrationKey, Selected, label

if TYPE_CHECKING:
    from django.db.migrations.graph import MigrationGraph
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState

    from guard.safety.production import Estimating


@dataclass(frozen=True)
class Prepared:
    """Django started and the graph loaded: what a run needs before it knows what to test (it
    may be prepared while git works that out, see :mod:`guard.ahead`)."""

    project: project.Project
    name: str
    """The run's placeholder database name, which every alias points at until its own
    database exists."""
    loader: MigrationLoader | None
    """None when loading the graph failed: the run loads it again, to say why."""


def prepare(options: CheckOptions) -> Prepared:
    name = throwaway.new_name()
    with timings.phase("django", "settings and django.setup()"):
        proj = project.load(options, name)
    make_interruptible()
    try:
        with timings.phase("graph") as said:
            loader = load_graph({})
            said.append(f"{len(loader.graph.nodes)} migrations imported")
    except FatalError:  # said by the run, with what this change deletes
        return Prepared(proj, name, None)
    return Prepared(proj, name, loader)


def run_check(options: CheckOptions, *, stdout: TextIO | None = None,
              stderr: TextIO | None = None, prepared: Prepared | None = None) -> int:
    with contextlib.ExitStack() as early:
        return _run_check(options, stdout or sys.stdout, stderr, prepared or prepare(options),
                          early)


def _run_check(options: CheckOptions, stdout: TextIO, stderr: TextIO | None,
               prepared: Prepared, early: contextlib.ExitStack) -> int:
    progress = Progress(stderr, verbose=options.verbose)
    estimating = _estimating(options)
    proj, name = prepared.project, prepared.name
    deleted = paths.deleted_keys(options.deleted)
    aliases = classify(proj.databases, options.databases, proj.settings_module)
    loader, provided = imported.load(proj, prepared.loader, options, deleted, early,
                                     aliases.tested[0])
    graph = loader.graph
    report = Report(
        mode="full" if options.full else (options.run_mode or "paths"),
        project_dir=_shown(str(proj.directory), options),
        settings=proj.settings_module,
        last=options.last,
        fail_on=options.fail_on,
        budget=options.max_blocking_seconds,
        measured=options.safety,
        verbose=options.verbose,
    )
    progress.line(
        f"migration-guard: {report.project_dir} (settings {proj.settings_module}, "
        f"from {proj.settings_origin})"
    )

    report.aliases = list(aliases.tested)
    progress.several = report.several
    with timings.phase("plan", "the selection, its dependents and the base"):
        plan = make_plan(graph, _choose(options, loader, deleted, report))
        report.selected = list(plan.selected)
        for key in plan.order:
            filename = migration_file(graph.nodes[key])
            if filename:
                report.files[key] = _shown(filename, options)
                report.sources[key] = filename
        report.not_tested = _not_tested(aliases, plan.order)
        report.notes.extend(_alias_notes(aliases))
        report.notes.extend(estimating.notes() if estimating else [])
        progress.selection(report)
        for line in report.not_tested:
            progress.line(f"warning: {line}")
        cannot_reverse = _known_before_database_work(plan, graph, report, progress, options)

    # The state after the base (for a cloned base) and after everything (for the models check):
    # one pass over the history serves both.
    with timings.phase("states", f"the state after {len(plan.base)} base migration(s)"):
        base_state = state_after(graph, plan.base, loader.unmigrated_apps)

    def run_checks() -> list[checks.CheckResult]:
        """The checks that need no database: beside the round trip, or while its database is
        cloned."""
        with timings.phase("checks"):
            full_state = state_after(graph, plan.order, loader.unmigrated_apps,
                                     start=base_state)
            todo: list[tuple[str, Callable[[], checks.CheckResult]]] = [
                ("conflicts", lambda: checks.conflicts(loader)),
                ("system checks", checks.system_checks),
                ("models match migrations", lambda: checks.missing_migrations(loader, full_state)),
            ]
            done = []
            for title, check in todo:
                with timings.phase(title, within="checks"):
                    done.append(check())
            return done

    def verdict() -> int:
        report.seconds = timings.RUN.now()
        report.timings = timings.RUN.ordered()
        if options.timings or options.verbose:
            progress.timings(report.timings, report.seconds)
        write_reports(report, options.formats, stdout, github=options.github,
                      environ=os.environ, stderr=stderr)
        return PASSED if report.passed else CHECK_FAILED

    if not (plan.order or options.full):
        report.checks = run_checks()
        progress.checks(report.checks)
        report.database = {"provider": "none", "reason": "no migration selected"}
        return verdict()
    report.rows = RowSettings(count=options.rows, data_seed=options.data_seed,
                              function=options.seed_function, fixtures=options.fixtures)
    with Beside(run_checks, name="checks") as checking, _on_every_alias(
            proj, aliases, loader, plan, cannot_reverse, report, progress, options,
            placeholder=name, meanwhile=checking.idle, base_state=base_state,
            provided=provided, estimating=estimating) as outcomes:
        report.outcomes = outcomes
        report.checks = checking.result()
        progress.checks(report.checks)
        report.not_run = _not_run(plan.order, report, aliases)
        if options.verbose and report.several:
            for alias, outcome in report.outcomes.items():
                ran = [label(k) for k in plan.order if k in outcome.steps
                       and k not in outcome.denied]
                progress.line(f"on {alias}: ran {', '.join(ran) or 'nothing'}")
        for key, why in report.not_run.items():
            progress.line(f"warning: {label(key)} ran on no database: {why}")
        # The verdict before the drops: they are done after it (see guard.execution.handoff).
        return verdict()


def _choose(options: CheckOptions, loader: MigrationLoader,
            deleted: dict[MigrationKey, Path], report: Report) -> dict[MigrationKey, Selected]:
    """The migrations the options select (before their dependents), with the notes on why."""
    report.notes.extend(options.notes)
    squashes = paths.replaced_by(loader)
    for key, path in deleted.items():
        if key in squashes:
            report.notes.append(f"deleted {label(key)}: replaced by the squashed "
                                f"{label(squashes[key])}, fine")
        else:
            report.notes.append(f"deleted {label(key)} ({path}): no remaining migration "
                                "depends on it")
    if options.full:
        apps = paths.project_app_labels()
        chosen = paths.select_last(loader, options.last, apps)
        tested = sorted({key[0] for key in chosen})
        without = len(set(apps) - set(tested))
        report.notes.append(
            f"full run: every migration from an empty database, then the last {options.last} "
            f"of each project app with migrations ({', '.join(tested) or 'none'}) back and "
            "forth" + (f"; {without} project app(s) without migrations" if without else "")
        )
        if options.shard:
            report.shard = _shard(loader.graph, chosen, options.shard)
            chosen = dict(report.shard.chosen)
            report.notes.append(report.shard.describe(options.last))
        return chosen
    if options.paths:
        picked = paths.select_paths(loader, options.paths)
        folders = paths.migration_folders()
        report.ignored = [
            (str(p), why) for p, why in picked.ignored
            # From git, only files that look like migrations are worth a warning.
            if not options.run_mode or paths.in_migrations_folder(p, folders)
        ]
        report.notes.extend(picked.notes)
        return picked.chosen
    if options.run_mode:
        report.notes.append("no migration changed: checking that models and migrations agree")
        return {}
    raise FatalError(
        "Nothing to check: give migration files (migration-guard check PATH ...) "
        "or --full for the whole project."
    )


def _known_before_database_work(plan: Plan, graph: MigrationGraph, report: Report,
                                progress: Progress, options: CheckOptions
                                ) -> set[MigrationKey]:
    """The accepted migrations and the irreversible operations, both found before any
    database work; the migrations that cannot be reversed."""
    # Known failures a team accepts: in config, or marked in the migration file.
    report.accepted = acceptance.accepted(plan.order, {**report.files, **report.sources},
                                          dict(options.accept))
    progress.accepted = set(report.accepted)
    progress.fail_on, progress.budget = options.fail_on, options.max_blocking_seconds
    for key, why in report.accepted.items():
        progress.line(f"accepted: {label(key)} ({why}): its failures are reported, not counted")
    cannot_reverse: set[MigrationKey] = set()
    for key in plan.order:
        migration = graph.nodes[key]
        assert migration is not None
        for found in irreversible_operations(key, migration):
            accepted = label(key) in options.allow_irreversible or key in report.accepted
            report.irreversible.append((found, accepted))
            cannot_reverse.add(key)
            progress.line(("accepted: " if accepted else "FAILED: ") + found.describe())
    return cannot_reverse


def _estimating(options: CheckOptions) -> Estimating | None:
    """With ``--stats``: the stats file, read now; imported only then (no cost without it)."""
    if not options.stats:
        return None
    from guard.safety.production import Estimating

    return Estimating.load(options.stats, options.speed_factor, options.max_stats_age_days)


@contextlib.contextmanager
def _on_every_alias(
    proj: project.Project,
    aliases: Aliases,
    loader: MigrationLoader,
    plan: Plan,
    cannot_reverse: set[MigrationKey],
    report: Report,
    progress: Progress,
    options: CheckOptions,
    *,
    placeholder: str,
    meanwhile: Callable[[], None],
    base_state: ProjectState,
    provided: Provided | None,
    estimating: Estimating | None = None,
) -> Iterator[dict[str, Outcome]]:
    """Provide the server (unless it was, to load the graph), then the round trip on every
    tested alias; the outcomes are for the block to report, the run's databases go when it
    ends."""
    first = aliases.tested[0]
    with contextlib.ExitStack() as stack:
        if provided is None:
            provided = stack.enter_context(imported.provide_server(proj, options, first))
        report.database = {
            "provider": provided.provider,
            "server": provided.server.describe(),
            "reason": provided.reason,
        }
        progress.line(f"database: {provided.provider}: {provided.reason}")
        targets = [Target(first, provided.server, provided.keep_options)]
        for alias in aliases.tested[1:]:
            server, keep = provided.server, provided.keep_options
            if options.db == "settings":
                server, keep = project.alias_server(proj, alias), True
                if server != provided.server:
                    _may_create_databases(alias, server)
                    progress.line(f"database {alias}: its own server {server.describe()}")
            targets.append(Target(alias, server, keep))
        sweeps = throwaways.sweeps({t.server.describe(): t.server for t in targets}.values())

        def meanwhile_and_swept() -> None:
            meanwhile()
            for job, swept in sweeps:
                job.join()
                if swept:
                    progress.line(f"cleaned up {len(swept)} database(s) left by runs that "
                                  f"were killed: {', '.join(swept)}")

        with runs.round_trips(
            targets, loader, base=plan.base, order=plan.order, cannot_reverse=cannot_reverse,
            base_state=base_state,
            settings=Settings(
                project_dir=options.project_dir, cache_size=options.cache_size,
                session={"lock_timeout": options.lock_timeout,
                         "statement_timeout": options.statement_timeout,
                         # Our databases are thrown away or kept only once complete (renamed by
                         # a commit that flushes all before it): no commit waits for the disk.
                         "synchronous_commit": "off"},
                rows=report.rows or RowSettings(count=0),
                measure=options.safety,
                cache_dir=options.cache_dir,
                jobs=options.jobs,
                estimator=(estimating.ready(provided.server, progress.line)
                           if estimating and options.safety else None),
            ),
            point=project.point, base_settings=project.base_settings,
            mirrors={a: m for a, m in aliases.mirrors.items() if a not in aliases.not_postgres},
            left_out=aliases.left_out, placeholder=(provided.server, placeholder),
            progress=progress, meanwhile=meanwhile_and_swept,
            # Servers that outlive the run get its databases handed over, and spares made.
            hand_over=provided.provider in ("url", "settings"),
        ) as outcomes:
            yield outcomes


def _shard(graph: MigrationGraph, chosen: dict[MigrationKey, Selected],
           spec: tuple[int, int]) -> shards.Shard:
    """This run's part of the full run: ``spec`` is (I, N)."""
    everything = make_plan(graph, chosen).order
    return shards.split(graph, chosen, everything, spec[1])[spec[0] - 1]


def _alias_notes(aliases: Aliases) -> list[str]:
    notes = []
    if len(aliases.tested) > 1:
        notes.append(f"databases: {', '.join(aliases.tested)}, each on a throwaway database of "
                     "its own")
    for alias, mirror in aliases.mirrors.items():
        notes.append(f"database {alias} mirrors {mirror} (TEST MIRROR): not migrated, as in "
                     "Django's tests")
    if aliases.left_out:
        notes.append(f"database(s) left out by --database / databases: "
                     f"{', '.join(aliases.left_out)}")
    return notes


def _not_tested(aliases: Aliases, order: Sequence[MigrationKey]) -> list[str]:
    """One line per alias that is not PostgreSQL: its engine, and what it would run."""
    lines = []
    for alias, engine in aliases.not_postgres.items():
        allowed = routing.allowed_apps(alias, {key[0] for key in order})
        would = [label(key) for key in order if key[0] in allowed]
        lines.append(
            f"database {alias} ({engine or 'no ENGINE'}) is not PostgreSQL: its migrations are "
            f"not tested; of those selected, the routers allow "
            f"{', '.join(would) if would else 'none'} there"
        )
    return lines


def _may_create_databases(alias: str, server: Server) -> None:
    why_not = can_create_databases(server)
    if why_not:
        raise FatalError(
            f"--db settings: cannot use the server of DATABASES[{alias!r}] "
            f"({server.describe()}): {why_not}. Start it, grant CREATEDB, or test every alias "
            "on one server with --db local / --db URL."
        )


def _not_run(order: Sequence[MigrationKey], report: Report, aliases: Aliases
             ) -> dict[MigrationKey, str]:
    """Selected migrations that every tested alias applied as no-ops: the routers' verdict."""
    found = {}
    for key in order:
        outcomes = [report.outcomes.get(alias) for alias in aliases.tested]
        if all(o is not None and key in o.denied for o in outcomes):
            why = (f"the routers allow none of its operations on "
                   f"{', '.join(aliases.tested)}")
            elsewhere = [*aliases.not_postgres, *aliases.left_out]
            if elsewhere:
                why += f" (not tested here: {', '.join(elsewhere)})"
            found[key] = why
    return found


def _shown(path: str, options: CheckOptions) -> str:
    """A path in an exported commit, shown where it lives in the repository."""
    if options.shown_root and options.shown_root[0] and path.startswith(options.shown_root[0]):
        return options.shown_root[1] + path[len(options.shown_root[0]):]
    return path
