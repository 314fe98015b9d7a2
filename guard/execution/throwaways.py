"""The run's own databases: taken from a spare or cloned while the main line does other work,
and once the verdict is out dropped, or handed to a process of their own.

A run database of a cached base is a spare clone renamed (:mod:`guard.database.spares`, a
millisecond, and the spare says what it held) or a clone made with ``CREATE DATABASE ...
TEMPLATE`` on a thread of its own (the statement waits on the server, not on Python). When the
run ends normally on a server that outlives it (a URL or the project's settings server), its
databases go to :mod:`guard.execution.handoff`, which drops them and makes the next run's spare
after this process has exited; otherwise (an interrupt, an error, a server that this run started
and stops) they are dropped here, all at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from guard import timings
from guard.database import spares, throwaway
from guard.database.server import Server
from guard.errors import FatalError
from guard.execution import handoff
from guard.execution.observation import Observation


class Progress(Protocol):
    def line(self, text: str = "") -> None: ...


@dataclass
class Made:
    """One run database: where, its name, the template it comes from."""

    server: Server
    name: str
    template: str | None
    first: Observation | None = None
    """What it held when it was made, when a spare said so (else the run reads it)."""
    spare: bool = False
    """It was a spare clone."""


def create(made: Made) -> None:
    """Make the database: take a spare of its template, else clone it (or make it empty)."""
    if made.template is not None:
        kept = spares.take(made.server, made.template, made.name)
        if kept is not None:
            made.spare = True
            with_first = kept.get("first")
            made.first = Observation.from_json(with_first) if with_first else None
            return
    throwaway.create_database(made.server, made.name, template=made.template)


def finish(made: Sequence[Made], progress: Progress, *, hand_over: bool,
           connect: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """The end of the run's databases: handed over (with a spare of each template made after
    the exit; ``connect`` holds, per run database, the connection options its reads of a spare
    use) when ``hand_over`` and the process could be started, else dropped now."""
    if hand_over and handoff.hand_over([
        handoff.Job(m.server, m.name, m.template, dict((connect or {}).get(m.name, {})))
        for m in made
    ]):
        return
    with timings.phase("drop", "the run's database(s)"):
        drop_all(made, progress)


def drop_all(made: Sequence[Made], progress: Progress) -> None:
    """Drop every database of ``made`` at once; an interrupt waits for the end."""
    dropping = [(m.name, Background(_dropper(m))) for m in made]
    interrupted: KeyboardInterrupt | None = None
    for name, job in dropping:
        while True:
            try:
                job.join()
            except KeyboardInterrupt as exc:  # finish the clean-up, then stop
                interrupted = exc
                continue
            except FatalError as exc:
                progress.line(f"warning: could not drop {name}: {exc}")
            break
    if interrupted is not None:
        raise interrupted


def options_of(connection: Any) -> dict[str, Any]:
    """The libpq options of ``connection`` that a reading of its database must share (the
    ``search_path`` in ``options``, ``sslmode``...): not its address, name or credentials."""
    try:
        params = connection.get_connection_params()
    except Exception:  # a backend of another shape: the server's own options then
        return {}
    leave = {"database", "dbname", "host", "port", "user", "password"}
    return {key: value for key, value in params.items()
            if key not in leave and isinstance(value, (str, int)) and not isinstance(value, bool)}


def _dropper(made: Made) -> Callable[[], None]:
    def drop() -> None:
        throwaway.drop_database(made.server, made.name)

    return drop


class Background:
    """One call on a thread of its own (a ``CREATE DATABASE`` waits on the server, not on
    Python); ``join`` waits for it and re-raises what it raised. With a ``phase``, its time is
    one of the run's phases, beside the main line."""

    def __init__(self, call: Callable[[], None], phase: str = "") -> None:
        self._error: BaseException | None = None

        def target() -> None:
            started = timings.RUN.now()
            try:
                call()
            except BaseException as exc:  # handed to join(), in the calling thread
                self._error = exc
            finally:
                if phase:
                    timings.add(phase, timings.RUN.now() - started, started=started,
                                parallel=True)

        self._thread = threading.Thread(target=target, name="migration-guard-database",
                                        daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def sweeps(servers: Iterable[Server]) -> list[tuple[Background, list[str]]]:
    """What runs that were killed left on each local server of ``servers``, dropped beside the
    run's other work (:func:`guard.database.throwaway.sweep`); each job's list, once it is
    joined, names what it dropped."""
    found: list[tuple[Background, list[str]]] = []
    for server in servers:
        if server.is_local:
            swept: list[str] = []
            found.append((Background(_sweeper(server, swept)), swept))
    return found


def _sweeper(server: Server, into: list[str]) -> Callable[[], None]:
    def sweep() -> None:
        into.extend(throwaway.sweep(server))

    return sweep
