"""After the verdict: the run's databases dropped, and a spare clone of each base made for the
next run, in a process of its own, so that nobody waits for either.

:func:`hand_over` starts ``python -m guard.execution.handoff`` with this run's interpreter,
detached (a session of its own, nothing on the terminal), and gives it the jobs as JSON on stdin;
the run then exits. The process drops each run database, then makes a spare of each template
(:func:`guard.database.spares.make`) and keeps in its comment what it holds: the schema and the
rows, read with the run connection's own options (its ``search_path`` decides which tables'
rows are read), exactly as the run that takes it would read them.

A database is never lost track of: until it is dropped it still has the run's name, with the
run's process id, and the next run on this machine drops those of a process that is gone
(:func:`guard.database.throwaway.sweep`); a spare half made has the name of this process.
Anything that goes wrong is written to the tool's log (``~/.cache/migration-guard``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.database import spares, throwaway
from guard.database.server import Server, connect
from guard.errors import FatalError


@dataclass(frozen=True)
class Job:
    server: Server
    name: str
    """The run database to drop."""
    template: str | None
    """The cached base it was cloned from: the one to make a spare of (None: none)."""
    connect: dict[str, Any] = field(default_factory=dict)
    """libpq options of the run's connection, for reading the spare as the run read it."""

    def to_json(self) -> dict[str, Any]:
        server = self.server
        return {"server": {"host": server.host, "port": server.port, "user": server.user,
                           "password": server.password, "options": dict(server.options)},
                "name": self.name, "template": self.template, "connect": self.connect}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls(Server(**data["server"]), data["name"], data.get("template"),
                   dict(data.get("connect") or {}))


def hand_over(jobs: Sequence[Job]) -> bool:
    """Start the process that finishes ``jobs``; False if it could not be started."""
    if not jobs:
        return True
    package_parent = str(Path(__file__).resolve().parent.parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH"))
                                        if p)
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "guard.execution.handoff"], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True, close_fds=True,
        )
    except OSError:
        return False
    # From now on the databases are the new process's: named with its process id, so that a
    # run's sweep leaves them to it while it lives, and drops them if it dies.
    try:
        jobs = [dataclasses.replace(job, name=throwaway.hand_to(job.server, job.name,
                                                                child.pid)) for job in jobs]
    except FatalError:  # the server went away: this process tries to drop them itself
        child.kill()
        child.wait()
        return False
    assert child.stdin is not None
    try:
        child.stdin.write(json.dumps([job.to_json() for job in jobs]).encode())
        child.stdin.close()
    except OSError:  # it died at once: this process drops the databases itself
        child.kill()
        child.wait()
        return False
    child.returncode = 0  # not waited for, on purpose: it outlives this process
    return True


def read(server: Server, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """What a run taking the spare ``name`` would read of it first."""
    from guard.execution.observation import observe

    reading = Server(server.host, server.port, server.user, server.password,
                     {**server.options, **{k: str(v) for k, v in options.items()}})
    conn = connect(reading, name)
    try:
        with conn.cursor() as cursor:
            return {"first": observe(cursor).to_json()}
    finally:
        conn.close()


def finish(jobs: Sequence[Job]) -> None:
    for job in jobs:
        throwaway.drop_database(job.server, job.name)
    made: set[tuple[str, str]] = set()
    for job in jobs:
        if job.template is None or (job.server.describe(), job.template) in made:
            continue
        made.add((job.server.describe(), job.template))

        def reader(name: str, job: Job = job) -> dict[str, Any]:
            return read(job.server, name, job.connect)

        spares.make(job.server, job.template, reader)


def _log(text: str) -> None:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = cache / "migration-guard" / "migration-guard.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"### {time.strftime('%Y-%m-%d %H:%M:%S')} handoff: {text}\n")
    except OSError:
        pass


def main() -> int:
    try:
        jobs = [Job.from_json(item) for item in json.loads(sys.stdin.read())]
        finish(jobs)
    except BaseException:
        _log(traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
