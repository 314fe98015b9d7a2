"""The everyday check on a real project: the warm branch check against ``manage.py check``.

Run it from the repository root with a checkout of a public Django project and a virtualenv
that has its requirements and migration-guard's own (``pip install -e /path/to/migration-guard``
or just Django, the driver and GitPython), PostgreSQL on the server its settings name:

    .venv/bin/python benchmarks/projects.py --repo ../django-oscar --project-dir sandbox \\
        --app catalogue --python ../django-oscar/.venv/bin/python \\
        --env DATABASE_ENGINE=django.db.backends.postgresql --env DATABASE_HOST=127.0.0.1

It clones the repository into a temporary folder (the checkout given is never touched), adds
one empty migration to ``--app`` on a branch (``manage.py makemigrations APP --empty``) and
commits it, as a developer's branch would; the clone's ``origin`` is the checkout, so branch
mode compares with its default branch. One unmeasured run builds and caches the base. Then,
in interleaved rounds, each a fresh process with bytecode caches on (as a user has them):
``manage.py check``, and ``migration-guard check`` in branch mode. Between two checks it waits
until the previous one's handoff process (which drops its database and makes the next run's
spare clone after the verdict) has finished, as it has between two pushes. It prints each
median, their ratio, and the median of each phase of the check's own ``timings``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DROPPED = ("PYTHONDONTWRITEBYTECODE", "DJANGO_SETTINGS_MODULE", "CI", "GITHUB_ACTIONS",
           "GITLAB_CI", "MIGRATION_GUARD_DATABASE_URL", "PRE_COMMIT_FROM_REF",
           "PRE_COMMIT_TO_REF")
IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


class BenchmarkError(Exception):
    pass


def environment(python: Path, extra: Sequence[str]) -> dict[str, str]:
    """A developer's shell with the project's virtualenv activated, bytecode caches on."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    venv = python.parent.parent
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)  # this migration-guard, whatever the virtualenv holds
    for item in extra:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def run(command: Sequence[str], cwd: Path, env: dict[str, str], *, ok: tuple[int, ...] = (0,)
        ) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        raise BenchmarkError(f"`{' '.join(command)}` in {cwd} exited {done.returncode}:\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done


def handoffs() -> list[int]:
    """Processes of migration-guard's handoff (Linux /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if b"guard.execution.handoff" in (entry / "cmdline").read_bytes():
                stat = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
                if stat[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def settle(timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while handoffs() and time.monotonic() < deadline:
        time.sleep(0.02)


def prepare(repo: Path, root: Path, project_dir: str, app: str, python: Path,
            env: dict[str, str], paths: Sequence[str]) -> Path:
    """The clone's project folder; ``env`` gets the clone's ``paths`` on ``PYTHONPATH``."""
    clone = root / "clone"
    env["PYTHONPATH"] = os.pathsep.join([*(str(clone / p) for p in paths),
                                         env["PYTHONPATH"]])
    git = ["git", "-c", "commit.gpgsign=false"]
    run([*git, "clone", "-q", str(repo.resolve()), str(clone)], root, {**env, **IDENTITY})
    run([*git, "checkout", "-q", "-b", "mg-bench"], clone, {**env, **IDENTITY})
    project = clone / project_dir
    run([str(python), "manage.py", "makemigrations", app, "--empty", "-n", "mg_bench"],
        project, env)
    run([*git, "add", "-A"], clone, {**env, **IDENTITY})
    run([*git, "commit", "-q", "-m", "one empty migration"], clone, {**env, **IDENTITY})
    return project


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--repo", type=Path, required=True, help="a checkout of the project")
    parser.add_argument("--project-dir", default=".", help="the folder of manage.py in it")
    parser.add_argument("--app", required=True, help="the app that gets an empty migration")
    parser.add_argument("--python", type=Path, required=True,
                        help="the project's interpreter (in its virtualenv)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="settings the project reads from the environment")
    parser.add_argument("--path", action="append", default=[], metavar="DIR",
                        help="a folder of the clone to put first on PYTHONPATH, where the "
                        "virtualenv has the project installed from the checkout (src, .)")
    parser.add_argument("--db", help="migration-guard's --db (default: its own choice)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--label", help="the project's name in the output")
    args = parser.parse_args(argv)
    python = args.python.absolute()
    env = environment(python, args.env)
    label = args.label or args.repo.resolve().name
    guard = [str(python), "-m", "guard", "check", "--format", "json",
             *(("--db", args.db) if args.db else ())]
    figures: dict[str, list[float]] = {"check": [], "warm": []}
    phases: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="mg-bench-project-") as tmp:
            project = prepare(args.repo, Path(tmp), args.project_dir, args.app, python, env,
                              args.path)
            _, first = run(guard, project, env, ok=(0, 1))
            selected = [s["migration"] for s in json.loads(first.stdout)["selected"]]
            print(f"{label}: the branch adds {', '.join(selected)}; "
                  f"{json.loads(first.stdout)['base']['migrations']} migration(s) in the base",
                  flush=True)
            for _ in range(args.repeat):
                settle()
                seconds, _ = run([str(python), "manage.py", "check"], project, env)
                figures["check"].append(seconds)
                settle()
                seconds, done = run(guard, project, env, ok=(0, 1))
                figures["warm"].append(seconds)
                for phase in json.loads(done.stdout)["timings"]:
                    if not phase["within"] and not phase["parallel"]:
                        phases.setdefault(phase["name"], []).append(phase["seconds"])
            settle()
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"{label}: median of {args.repeat}, interleaved, bytecode caches on")
    for name, values in figures.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        what = "manage.py check" if name == "check" else "migration-guard check (warm)"
        print(f"  {what:<30} {medians[name]:6.2f}s  (runs: {shown})")
    print(f"  warm / check = {medians['warm'] / medians['check']:.2f}x")
    print("  where the warm check's time went (medians):")
    for name, values in phases.items():
        print(f"    {name:<28} {statistics.median(values):6.3f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
