"""Where a run's time went: named phases on one clock, for ``--timings`` and the JSON report.

The clock starts when the interpreter that runs ``migration-guard`` started (read from ``/proc``
on Linux, else when this module was first imported), so that the phases add up to what the user
waited for. A phase is recorded where its work is done (:func:`phase`, :func:`add`); one that ran
beside the main line (the checks in a process of their own) is marked ``parallel``, and one that
is part of another (the snapshots of the round trip) names it in ``within``. The git side, in the
tool's own interpreter, hands its phases to the Django side with the run's options
(:func:`exported`, :func:`adopt`); there is one recorder per process, :data:`RUN`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


def _process_age() -> float:
    """Seconds since this process started, from ``/proc`` (0 where there is none)."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of proc(5), counted after the command's name
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        return max(0.0, since_boot - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


@dataclass(frozen=True)
class Phase:
    name: str
    started: float
    """Seconds from the start of the run."""
    seconds: float
    detail: str = ""
    within: str = ""
    """The phase this one is part of ("": none)."""
    parallel: bool = False
    """It ran beside the main line: its time is not added to the run's."""

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "started": round(self.started, 4),
                "seconds": round(self.seconds, 4), "detail": self.detail,
                "within": self.within or None, "parallel": self.parallel}


@dataclass
class Timings:
    """The phases of one run, in the order they started."""

    origin: float = field(default_factory=lambda: time.time() - _process_age())
    """When the run started, as ``time.time()``."""
    phases: list[Phase] = field(default_factory=list)
    tallies: dict[tuple[str, str], tuple[float, float, int]] = field(default_factory=dict)
    """(name, within) -> (first start, seconds, count): work done many times, in one line."""

    def now(self) -> float:
        """Seconds since the start of the run."""
        return time.time() - self.origin

    @contextlib.contextmanager
    def phase(self, name: str, detail: str = "", *, within: str = "") -> Iterator[list[str]]:
        """Time the block as ``name``; the block may append to the list it gets to say more."""
        said: list[str] = [detail] if detail else []
        started = self.now()
        try:
            yield said
        finally:
            self.add(name, self.now() - started, started=started, detail="; ".join(said),
                     within=within)

    def add(self, name: str, seconds: float, *, started: float | None = None, detail: str = "",
            within: str = "", parallel: bool = False) -> None:
        """A phase measured elsewhere; ``started`` defaults to ``seconds`` before now."""
        begun = self.now() - seconds if started is None else started
        self.phases.append(Phase(name, begun, seconds, detail, within, parallel))

    def tally(self, name: str, seconds: float, *, within: str = "") -> None:
        """One more time of a piece of work done many times (a snapshot): one phase in all."""
        started, spent, count = self.tallies.get((name, within), (self.now() - seconds, 0.0, 0))
        self.tallies[name, within] = (started, spent + seconds, count + 1)

    @contextlib.contextmanager
    def tallied(self, name: str, *, within: str = "") -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.tally(name, time.perf_counter() - started, within=within)

    def total(self, phases: Sequence[Phase] = ()) -> float:
        """Seconds from the start of the run to the end of its last phase (or now)."""
        ends = [p.started + p.seconds for p in (phases or self.phases)]
        return max(ends) if ends else self.now()

    def ordered(self) -> list[Phase]:
        """Every phase, tallies included, in the order they started."""
        tallied = [Phase(name, started, seconds, f"{count} time(s)", within)
                   for (name, within), (started, seconds, count) in self.tallies.items()]
        return sorted([*self.phases, *tallied], key=lambda p: p.started)


RUN = Timings()
"""This process's recorder."""


def phase(name: str, detail: str = "", *, within: str = "") -> contextlib.AbstractContextManager[
        list[str]]:
    """:meth:`Timings.phase` on :data:`RUN`."""
    return RUN.phase(name, detail, within=within)


def add(name: str, seconds: float, *, started: float | None = None, detail: str = "",
        within: str = "", parallel: bool = False) -> None:
    """:meth:`Timings.add` on :data:`RUN`."""
    RUN.add(name, seconds, started=started, detail=detail, within=within, parallel=parallel)


def tallied(name: str, *, within: str = "") -> contextlib.AbstractContextManager[None]:
    """:meth:`Timings.tallied` on :data:`RUN`."""
    return RUN.tallied(name, within=within)


Exported = tuple[float, tuple[tuple[str, float, float, str], ...]]
"""The recorder on the wire: its origin and each phase as (name, started, seconds, detail)."""


def exported() -> Exported:
    """:data:`RUN` for the Django side in another process."""
    return RUN.origin, tuple((p.name, p.started, p.seconds, p.detail) for p in RUN.phases)


def adopt(data: Exported | None) -> None:
    """Continue the run of the process that started this one: its clock and its phases, and
    this interpreter's own start-up as a phase."""
    if not data:
        return
    origin, phases = data
    mine = time.time() - _process_age()
    RUN.origin = origin
    RUN.phases = [Phase(name, started, seconds, detail)
                  for name, started, seconds, detail in phases] + RUN.phases
    begun = max(0.0, mine - origin)
    RUN.add("start-up", max(0.0, RUN.now() - begun), started=begun,
            detail="the project's interpreter")


def merge(data: Exported | None) -> None:
    """The phases of the process that started this one that this one does not have yet (git,
    worked out while this one started Django): beside this one's main line."""
    if not data:
        return
    known = {(p.name, round(p.started, 6)) for p in RUN.phases}
    for name, started, seconds, detail in data[1]:
        if (name, round(started, 6)) not in known:
            RUN.phases.append(Phase(name, started, seconds, detail, parallel=True))


def reset() -> None:
    """A new run in this process (each ``main()``, the management command): no phases yet, the
    clock from the process's start."""
    global RUN
    RUN = Timings()
