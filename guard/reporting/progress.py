"""Progress lines on stderr while a run goes, so that stdout stays clean for a report."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

from guard.execution.checks import CheckResult
from guard.reporting import findings
from guard.reporting.model import Report
from guard.reporting.text import describe_reason
from guard.rows.seeding import RowSettings, Seeded
from guard.timings import Phase
from guard.types import MigrationKey, StepResult, label

CHECK_WIDTH = 160
PLAIN_EVERY = 30.0
"""Seconds between plain progress lines where there is no terminal to keep one line live."""
"""Of what a failed check's line says; the report under the steps has every error."""


class Progress:
    """Lines to stderr while the run goes; quiet when not verbose and nothing is wrong."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.live = _is_terminal(self.stream)
        """Long work shows one line that keeps changing; else a plain line now and then."""
        self._shown = False
        """A live line is on the screen, to be cleared before the next line."""
        self._last = time.monotonic()
        """When the last line, plain or live, was written."""
        self.accepted: set[MigrationKey] = set()
        self.fail_on: frozenset[str] = frozenset()
        self.budget: float | None = None
        """Kinds of finding that fail the run: only those are said under a migration's line
        (all of them with ``-v``)."""
        self.several = False
        """More than one alias is tested: every step line names its alias."""
        self.alias = "default"
        """The alias whose lines come next."""
        self.width = 40
        """Of the migration column: wider when the names carry their alias."""
        self.total = 0
        """Migrations in the round trip (for its live progress)."""
        self._pending: dict[tuple[str, MigrationKey], list[StepResult]] = {}
        """Each migration's steps so far, until its line is written."""
        self._done: dict[str, int] = {}
        """Steps of each kind done in this alias's round trip."""
        self._started: float | None = None
        self.holding = False
        """Each migration's line is held back, for :meth:`release` to say them in order."""

    def _named(self, text: str) -> str:
        return f"{text} on {self.alias}" if self.several else text

    def line(self, text: str = "") -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self._shown = False
        print(text, file=self.stream, flush=True)
        self._last = time.monotonic()

    def applying(self, index: int, total: int, key: MigrationKey, started: float) -> None:
        """Before each migration of a base being built: how far it is, on a terminal in one
        line rewritten each time (so that a slow migration is named while it runs), else in a
        plain line every half minute."""
        now = time.monotonic()
        text = (f"  base: applying {index + 1}/{total} {label(key)}"
                f"{self._named('')} ({now - started:.0f}s)")
        self._live(text, now)

    def _live(self, text: str, now: float) -> None:
        """Long work's progress: on a terminal one line rewritten each time, else a plain line
        every half minute."""
        if self.live:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r\033[K" + text[:width])
            self.stream.flush()
            self._shown, self._last = True, now
        elif now - self._last >= PLAIN_EVERY:
            self.line(text)

    def selection(self, report: Report) -> None:
        for path, why in report.ignored:
            self.line(f"warning: ignored {path}: {why}")
        for note in report.notes:
            self.line(f"note: {note}")
        if not report.selected:
            self.line("selected: no migrations")
            return
        self.total = len(report.selected)
        width = max(len(label(s.migration)) for s in report.selected)
        self.width = max(self.width, width + (len(" on ") + max(map(len, report.aliases))
                                              if self.several else 0))
        if report.mode == "full" and not self.verbose:  # each one has its line below
            last = sum(1 for s in report.selected if s.reason == "last-N")
            rest = len(report.selected) - last
            self.line(f"selected {len(report.selected)} migration(s): the last {report.last} "
                      f"of each app ({last})" + (f" and {rest} that depend on them"
                                                  if rest else "") + "; -v lists them")
            return
        self.line(f"selected {len(report.selected)} migration(s):")
        for item in report.selected:
            why = describe_reason(item, report.last, report.mode)
            self.line(f"  {label(item.migration):<{width}}  {why}")

    def checks(self, results: Sequence[CheckResult]) -> None:
        """The project checks: one line when all passed (a line each with ``-v``)."""
        if results and all(r.ok for r in results) and not self.verbose:
            self.line(f"checks: {', '.join(r.name for r in results)}: ok")
            return
        for result in results:
            self.check(result)

    def check(self, result: CheckResult) -> None:
        """A project check's line: what failed, on the line itself (the report has it all)."""
        if result.ok:
            self.line(f"check: {result.name}: ok")
            return
        what = "; ".join(result.errors)
        if len(what) > CHECK_WIDTH:
            what = what[:CHECK_WIDTH - 1].rstrip() + "…"
        self.line(f"check: {result.name}: FAILED: {what}")

    def base(self, count: int, seconds: float, *, cached: bool = False, reused: int = 0,
             restored: bool = False) -> None:
        """``reused``: of ``count``, those a smaller cached base already held; ``restored``:
        it came from the cache folder."""
        what = f"{count} migration(s) outside the selection"
        if restored:
            what += " (restored from the cache folder)"
        elif reused == count and not cached:
            what += " (cached, new rows)"
        elif reused and not cached:
            what += f" (cached {reused} + applied {count - reused})"
        what = self._named(what)
        status = "cached" if cached else "ok"
        self.line(f"  {'base':<13} {what:<{self.width}} {status:<7} {seconds:6.2f}s")

    def rows(self, seeded: Seeded | None, settings: RowSettings) -> None:
        """What the base holds besides its migrations' own rows."""
        if seeded is None:
            return
        what = self._named(f"{seeded.rows} in {seeded.tables} table(s) ({settings.describe()})")
        self.line(f"  {'rows':<13} {what:<{self.width}} {'ok':<7} {seeded.seconds:6.2f}s")
        for note in seeded.notes:
            self.line(f"      note: {note}")

    def timings(self, phases: list[Phase], seconds: float) -> None:
        """``--timings``: each phase of the run with its time, the parts of one under it."""
        self.line(f"timings: {seconds:.2f}s from the interpreter's start to the verdict")
        names = {p.name for p in phases}
        for phase in phases:
            if phase.within and phase.within in names:
                continue
            self._phase(phase, 2)
            for part in phases:
                if part.within == phase.name:
                    self._phase(part, 4)
        main_line = sum(p.seconds for p in phases if not p.within and not p.parallel)
        if seconds - main_line >= 0.005:
            self.line(f"{'  other':<30} {seconds - main_line:6.2f}s  between the phases: "
                      "imports, planning, output")

    def _phase(self, phase: Phase, indent: int) -> None:
        aside = " (beside the main line)" if phase.parallel else ""
        detail = f"  {phase.detail}" if phase.detail else ""
        name = f"{' ' * indent}{phase.name}"
        self.line(f"{name:<30} {phase.seconds:6.2f}s{detail}{aside}")

    def step(self, key: MigrationKey, result: StepResult) -> None:
        """After each step of the round trip. With ``-v``, one line per step and all it found;
        else one line per migration once its three steps are done (its failures and findings
        under it), and meanwhile the live progress of the round trip."""
        if self.holding:  # said in order by release(); meanwhile only the live line
            self._done[result.step] = self._done.get(result.step, 0) + 1
            self._round_trip(key, result)
            return
        if self.verbose:
            self._step_lines(key, result)
            return
        steps = self._pending.setdefault((self.alias, key), [])
        steps.append(result)
        self._done[result.step] = self._done.get(result.step, 0) + 1
        if result.step == "forward-again":
            self._migration(key, self._pending.pop((self.alias, key)))
        self._round_trip(key, result)

    def release(self, order: Sequence[MigrationKey],
                steps: Mapping[MigrationKey, list[StepResult]]) -> None:
        """The round trip ran in parts at once: each migration's lines, in order."""
        self.holding = False
        for key in order:
            results = steps.get(key, [])
            if self.verbose:
                for result in results:
                    self._step_lines(key, result)
            elif results:
                self._migration(key, results)
        self._done.clear()
        self._started = None

    def done(self) -> None:
        """The alias's round trip ended (maybe early): the lines of the migrations left."""
        for alias, key in list(self._pending):
            if alias == self.alias:
                self._migration(key, self._pending.pop((alias, key)))
        self._done.clear()
        self._started = None

    def _round_trip(self, key: MigrationKey, result: StepResult) -> None:
        now = time.monotonic()
        if self._started is None:
            self._started = now - result.seconds
        total = f"/{self.total}" if self.total else ""
        text = (f"  round trip: {result.step} {self._done[result.step]}{total} "
                f"{self._named(label(key))} ({now - self._started:.0f}s)")
        self._live(text, now)

    def _migration(self, key: MigrationKey, steps: list[StepResult]) -> None:
        """One migration's line: its steps and times; under it what failed and what was
        found."""
        if any(s.ok is False for s in steps):
            status = "accepted" if key in self.accepted else "FAILED"
        else:
            status = "ok" if any(s.ok for s in steps) else "skipped"
        parts = [f"{s.step}{'' if s.ok else ' ' + _STATUS[s.ok]} {s.seconds:.2f}s"
                 if s.ok is not None else f"{s.step} skipped" for s in steps]
        if steps and steps[0].ok is None and steps[0].step == "forward" and steps[0].error:
            status = "blocked" if steps[0].blocked_by else "skipped"
            parts = [steps[0].error]  # never applied: why
        self.line(f"  {self._named(label(key)):<{self.width}} {status:<8} {' | '.join(parts)}")
        for result in steps:
            if result.ok is False:
                self.line(f"      {result.step}: {result.error}")
            for lost in result.rows_lost:
                self.line(f"      warning: {result.step}: {lost}")
            for line in findings.step_lines(result, verbose=False, fail_on=self.fail_on,
                                            accepted=key in self.accepted, budget=self.budget):
                self.line(f"      {result.step}: {line}")

    def _step_lines(self, key: MigrationKey, result: StepResult) -> None:
        status = _STATUS[result.ok]
        if result.ok is False and key in self.accepted:
            status = "accepted"
        self.line(
            f"  {result.step:<13} {self._named(label(key)):<{self.width}} {status:<7} "
            f"{result.seconds:6.2f}s"
        )
        if result.ok is False or result.ok is None:
            self.line(f"      {result.error}")
        for warning in result.warnings:
            self.line(f"      warning: {warning}")
        for lost in result.rows_lost:
            self.line(f"      warning: {lost}")
        for line in findings.step_lines(result, verbose=True):
            self.line(f"      {line}")


_STATUS = {True: "ok", False: "FAILED", None: "skipped"}


def _is_terminal(stream: TextIO) -> bool:
    """A terminal that understands a carriage return and ``ESC [ K`` (not ``TERM=dumb``)."""
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False
