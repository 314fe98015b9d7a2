"""How fast is migration-guard? Measured against plain Django on a synthetic project.

Run it from the repository root with the project's virtualenv (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python benchmarks/run.py --migrations 100 300
    .venv/bin/python benchmarks/run.py --migrations 100 300 1000 --repeat 5 --db local --keep

For each ``--migrations N`` it generates a git repository holding a Django project with N
migrations over ten apps (cross-app foreign keys, AddField, AlterField, AddIndex, RenameField,
RemoveField, RunPython with a reverse), pushed to a bare ``origin``, and a branch ``feature``
that adds one migration to ``app5``. On that branch it measures, each the median of
``--repeat`` runs of whole commands in fresh processes:

1. the seed's full run, what CI does today with plain Django on a fresh database: ``migrate``
   from scratch, ``check``, then per app ``migrate APP <before its last 5>`` and ``migrate APP``;
2. ``manage.py migrate`` from an empty database;
3. ``migration-guard check`` in branch mode, cold (after ``migration-guard clean`` if it exists);
4. the same, warm (after one unmeasured run);
5. ``manage.py check``, the floor;
6. ``migration-guard check --full`` with an empty cache (the CI run on a fresh server), to
   compare with (2): the issue's bar is 1.6x at N=300.

The plain Django commands run on throwaway ``bench_seed_*`` databases on ``--server`` (created
before and dropped after each run, outside the timing); migration-guard gets ``--db``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType

from databases import Databases, Server, ServerError
from synthetic import (
    APP_COUNT,
    MIN_MIGRATIONS,
    Feature,
    Generator,
    add_feature,
    rollback_targets,
    write_project,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/postgres"
ROLLBACK = 5
FEATURE_APP = 5
# Variables that would make migration-guard (or Django) behave differently from a developer's
# shell: CI detection switches it to the full run.
DROPPED_VARIABLES = (
    "CI", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "BUILDKITE", "JENKINS_URL",
    "TEAMCITY_VERSION", "TF_BUILD", "BITBUCKET_BUILD_NUMBER", "CONTINUOUS_INTEGRATION",
    "DRONE", "APPVEYOR", "CODEBUILD_BUILD_ID", "DJANGO_SETTINGS_MODULE",
    "MIGRATION_GUARD_DATABASE_URL", "PRE_COMMIT_FROM_REF", "PRE_COMMIT_TO_REF",
)
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
COLUMNS = ("seed full (1)", "migrate (2)", "guard cold (3)", "guard warm (4)", "check (5)",
           "full cold (6)")


class BenchmarkError(Exception):
    """A command failed or the generated project is wrong: the benchmark cannot go on."""


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...]
    repeat: int
    db: str
    server: Server
    keep: bool
    seed: int


@dataclass(frozen=True)
class Project:
    path: Path
    migrations: int
    feature: Feature
    targets: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Guard:
    """The migration-guard command and what this version of it offers."""

    executable: str
    db: str
    clean: tuple[str, ...] | None
    """The command that empties its cache, or None when it has none."""


@dataclass
class Row:
    migrations: int
    figures: dict[str, list[float]] = field(default_factory=dict)

    def median(self, column: str) -> float:
        return statistics.median(self.figures[column])


# -- processes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str
    seconds: float


def run(command: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> Result:
    """Run a command to completion, timed; a non-zero exit aborts the benchmark with its output.

    Output goes to files, not pipes, so that an interrupted command can be waited for while it
    cleans up (migration-guard drops its databases on Ctrl-C and SIGTERM).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        try:
            process = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdout=out,
                                       stderr=err, text=True)
        except OSError as exc:
            raise BenchmarkError(f"cannot run `{' '.join(command)}` in {cwd}: {exc}") from exc
        try:
            code = process.wait()
        except KeyboardInterrupt:
            stop(process)
            raise
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code != 0:
        raise BenchmarkError(
            f"`{' '.join(command)}` (in {cwd}) exited {code}\n"
            f"--- stdout ---\n{stdout.rstrip()}\n--- stderr ---\n{stderr.rstrip()}"
        )
    return Result(stdout, stderr, seconds)


def stop(process: subprocess.Popen[str]) -> None:
    """Let an interrupted command finish cleaning up: a Ctrl-C reached it too, SIGTERM did not."""
    try:
        process.wait(timeout=2)
        return
    except subprocess.TimeoutExpired:
        process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def base_env() -> dict[str, str]:
    """This environment as a developer's shell with the virtualenv activated would have it."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_VARIABLES}
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def manage(project: Path, env: Mapping[str, str], *args: str) -> Result:
    return run([sys.executable, "manage.py", *args], cwd=project, env=env)


def git(repo: Path, *args: str) -> None:
    run(["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
        cwd=repo, env={**base_env(), **GIT_IDENTITY, "LANG": "C.UTF-8"})


# -- the project ------------------------------------------------------------------------------


def build_project(root: Path, migrations: int, seed: int, server: Server) -> Project:
    """Generate the project, check its models match, commit and push main, then the feature."""
    path = root / "project"
    apps = Generator(seed).generate(migrations)
    write_project(path, apps)
    verify_models(path, server, "main")
    origin = root / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], cwd=root, env=base_env())
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", f"Synthetic project: {migrations} migrations")
    git(path, "remote", "add", "origin", str(origin))
    git(path, "push", "-q", "origin", "main")
    git(path, "remote", "set-head", "origin", "main")
    git(path, "checkout", "-q", "-b", "feature")
    feature = add_feature(path, apps[FEATURE_APP])
    verify_models(path, server, "feature")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", f"Feature: {feature.label}")
    return Project(path, migrations, feature, tuple(rollback_targets(apps, ROLLBACK)))


def verify_models(path: Path, server: Server, branch: str) -> None:
    """``makemigrations --check`` must find no change: models.py matches the migrations."""
    env = {**base_env(), **server.django_env("bench_main")}
    try:
        manage(path, env, "makemigrations", "--check", "--dry-run")
    except BenchmarkError as exc:
        raise BenchmarkError(
            f"the generated project ({branch}) is wrong, models and migrations differ:\n{exc}"
        ) from exc


# -- migration-guard --------------------------------------------------------------------------


def find_guard(db: str) -> Guard:
    beside = Path(sys.executable).parent / "migration-guard"
    executable = str(beside) if beside.exists() else shutil.which("migration-guard")
    if executable is None:
        raise BenchmarkError("migration-guard is not installed (pip install -e .)")
    here = Path.cwd()
    help_text = run([executable, "--help"], cwd=here, env=base_env()).stdout
    clean: tuple[str, ...] | None = None
    if re.search(r"^\s+clean\b", help_text, re.MULTILINE):
        clean_help = run([executable, "clean", "--help"], cwd=here, env=base_env()).stdout
        clean = (executable, "clean", *(("--db", db) if "--db" in clean_help else ()))
    return Guard(executable, db, clean)


def handoffs() -> list[int]:
    """Live processes of migration-guard's handoff (Linux /proc): after a run's verdict, they
    drop its database and make the next run's spare clone."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if b"guard.execution.handoff" in (entry / "cmdline").read_bytes() and (
                    (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def settle(timeout: float = 60.0) -> None:
    """Until the last run's handoff has finished, as it has between two pushes (not timed)."""
    deadline = time.monotonic() + timeout
    while handoffs() and time.monotonic() < deadline:
        time.sleep(0.02)


def guard_check(guard: Guard, project: Project) -> Result:
    """One ``migration-guard check`` in branch mode; it must pass and select the feature."""
    settle()
    result = run([guard.executable, "check", "--db", guard.db], cwd=project.path,
                 env=base_env())
    if not re.search(rf"^\s+{re.escape(project.feature.label)}\b", result.stderr, re.MULTILINE):
        raise BenchmarkError(
            f"migration-guard did not select {project.feature.label}:\n{result.stderr}"
        )
    return result


def guard_summary(result: Result) -> str:
    """The lines of its progress that say what it selected and where the database came from."""
    keep = ("selected", "database:", "note:", "base")
    return "\n".join(f"      | {line}" for line in result.stderr.splitlines()
                     if line.strip().startswith(keep))


def leftovers(guard: Guard) -> set[str]:
    """migration-guard's non-cache databases on its server (only knowable with a URL)."""
    if "://" not in guard.db:
        return set()
    names = Server.from_url(guard.db).database_names(r"migration\_guard\_%")
    return {name for name in names
            if not name.startswith(("migration_guard_cache_", "migration_guard_spare_"))}


# -- the measurements -------------------------------------------------------------------------


def seed_full_run(project: Project, dbs: Databases) -> float:
    """What CI does today: migrate, check, then the last 5 of each app back and forth."""
    name = dbs.create()
    try:
        env = {**base_env(), **dbs.server.django_env(name)}
        started = time.perf_counter()
        manage(project.path, env, "migrate", "--noinput")
        manage(project.path, env, "check")
        for app, target in project.targets:
            manage(project.path, env, "migrate", app, target, "--noinput")
            manage(project.path, env, "migrate", app, "--noinput")
        return time.perf_counter() - started
    finally:
        dbs.drop(name)


def plain_migrate(project: Project, dbs: Databases) -> float:
    name = dbs.create()
    try:
        env = {**base_env(), **dbs.server.django_env(name)}
        return manage(project.path, env, "migrate", "--noinput").seconds
    finally:
        dbs.drop(name)


def guard_cold(guard: Guard, project: Project) -> float:
    settle()
    if guard.clean:
        run(guard.clean, cwd=project.path, env=base_env())
    return guard_check(guard, project).seconds


def guard_full_cold(guard: Guard, project: Project) -> float:
    """``check --full`` (the CI run) with an empty cache: every migration from an empty
    database, the checks, then the last 5 of each app back and forth."""
    settle()
    if guard.clean:
        run(guard.clean, cwd=project.path, env=base_env())
    return run([guard.executable, "check", "--full", "--db", guard.db], cwd=project.path,
               env=base_env()).seconds


def plain_check(project: Project, server: Server) -> float:
    env = {**base_env(), **server.django_env("bench_main")}
    return manage(project.path, env, "check").seconds


def record(row: Row, column: str, repeat: int, once: Callable[[], float]) -> None:
    row.figures[column] = [once() for _ in range(repeat)]
    runs = ", ".join(f"{seconds:.2f}" for seconds in row.figures[column])
    print(f"  {column:<15} {row.median(column):7.2f}s  (runs: {runs})", flush=True)


def measure(project: Project, guard: Guard, options: Options) -> Row:
    row = Row(project.migrations)
    repeat = options.repeat
    with Databases(options.server) as dbs:
        record(row, COLUMNS[0], repeat, lambda: seed_full_run(project, dbs))
        record(row, COLUMNS[1], repeat, lambda: plain_migrate(project, dbs))
        record(row, COLUMNS[2], repeat, lambda: guard_cold(guard, project))
        warm_up = guard_check(guard, project)
        print(guard_summary(warm_up), flush=True)
        record(row, COLUMNS[3], repeat, lambda: guard_check(guard, project).seconds)
        record(row, COLUMNS[4], repeat, lambda: plain_check(project, options.server))
        record(row, COLUMNS[5], repeat, lambda: guard_full_cold(guard, project))
    return row


# -- the report -------------------------------------------------------------------------------


def machine(options: Options, guard: Guard) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    memory = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    guard_version = run([guard.executable, "--version"], cwd=Path.cwd(), env=base_env())
    server = options.server
    gib = f", {int(memory.group(1)) / 2**20:.1f} GiB memory" if memory else ""
    return [
        f"machine: {cpus} CPU(s) (nproc){gib}",
        f"cpu: {model.group(1).strip() if model else platform.processor() or 'unknown'}",
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"python {platform.python_version()}, django {_version('django')}, "
        f"psycopg2 {_version('psycopg2-binary') or _version('psycopg2')}, "
        f"{guard_version.stdout.strip()}",
        f"postgresql {server.version()} at {server.host}:{server.port} (plain Django)",
        f"migration-guard --db {guard.db}; cache cleaned before cold runs: "
        f"{' '.join(guard.clean[1:]) if guard.clean else 'no (no clean command)'}",
    ]


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return ""


def table(rows: Sequence[Row]) -> str:
    ratios = (("(1)/(4)", 0, 3), ("(4)/(5)", 3, 4), ("(3)/(2)", 2, 1), ("(6)/(2)", 5, 1))
    header = f"{'migrations':>10}" + "".join(f"{c:>16}" for c in COLUMNS)
    header += "".join(f"{name:>9}" for name, _, _ in ratios)
    lines = [header, "-" * len(header)]
    for row in rows:
        medians = [row.median(c) for c in COLUMNS]
        line = f"{row.migrations:>10}" + "".join(f"{m:>15.2f}s" for m in medians)
        line += "".join(f"{medians[a] / medians[b]:>8.2f}x" for _, a, b in ratios)
        lines.append(line)
    return "\n".join(lines)


# -- the command ------------------------------------------------------------------------------


def benchmark(options: Options) -> int:
    guard = find_guard(options.db)
    print("\n".join(machine(options, guard)), flush=True)
    root = Path(tempfile.mkdtemp(prefix="migration-guard-bench-"))
    rows: list[Row] = []
    try:
        for size in options.sizes:
            started = time.perf_counter()
            before = leftovers(guard)
            project = build_project(root / f"n{size}", size, options.seed, options.server)
            print(f"\n{size} migrations over {APP_COUNT} apps, feature {project.feature.label}: "
                  f"generated and verified in {time.perf_counter() - started:.1f}s"
                  + (f" ({project.path})" if options.keep else ""), flush=True)
            rows.append(measure(project, guard, options))
            settle()  # the last run's handoff drops its database
            left = leftovers(guard) - before
            if left:
                print(f"  warning: migration-guard databases appeared and remain "
                      f"(a leftover, or a concurrent run): {sorted(left)}", flush=True)
        print(f"\nmedians of {options.repeat} run(s), whole commands in fresh processes:")
        print(table(rows))
    finally:
        if options.keep:
            print(f"\nkept the generated project(s) in {root} (and migration-guard's cache)")
        else:
            drop_cache(guard, root)
            shutil.rmtree(root, ignore_errors=True)
    return 0


def drop_cache(guard: Guard, cwd: Path) -> None:
    """No cache of the deleted projects left behind (a failure here must not hide another)."""
    if guard.clean:
        try:
            run(guard.clean, cwd=cwd, env=base_env())
        except BenchmarkError as exc:
            print(f"warning: {exc}", file=sys.stderr)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--migrations", type=int, nargs="+", default=[300], metavar="N",
                        help="history sizes to generate, one table row each (default 300)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs per figure, the median is shown (default 5)")
    parser.add_argument("--db", default=DEFAULT_URL,
                        help=f"migration-guard's --db: a URL or local|docker|auto "
                        f"(default {DEFAULT_URL})")
    parser.add_argument("--server", metavar="URL",
                        help="the server of the plain Django runs (default: --db if it is a "
                        f"URL, else {DEFAULT_URL})")
    parser.add_argument("--keep", action="store_true",
                        help="keep the generated projects and print where they are")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the generator")
    args = parser.parse_args(argv)
    if min(args.migrations) < MIN_MIGRATIONS:
        parser.error(f"--migrations: at least {MIN_MIGRATIONS} (one initial migration per app)")
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    url = args.server or (args.db if "://" in args.db else DEFAULT_URL)
    return Options(sizes=tuple(args.migrations), repeat=args.repeat, db=args.db,
                   server=Server.from_url(url), keep=args.keep, seed=args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return benchmark(options)
    except (BenchmarkError, ServerError) as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmark: interrupted; its databases were dropped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
