"""Progress lines on stderr while a run goes, so that stdout stays clean for a report."""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import TextIO

from guard.execution.checks import CheckResult
from guard.execution.seeding import RowSettings, Seeded
from guard.reporting import findings
from guard.reporting.model import Report
from guard.reporting.text import describe_reason
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
        self.several = False
        """More than one alias is tested: every step line names its alias."""
        self.alias = "default"
        """The alias whose lines come next."""
        self.width = 40
        """Of the migration column: wider when the names carry their alias."""

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
        if self.live:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r\033[K" + text[:width])
            self.stream.flush()
            self._shown, self._last = True, now
        elif not self.live and now - self._last >= PLAIN_EVERY:
            self.line(text)

    def selection(self, report: Report) -> None:
        for path, why in report.ignored:
            self.line(f"warning: ignored {path}: {why}")
        for note in report.notes:
            self.line(f"note: {note}")
        if not report.selected:
            self.line("selected: no migrations")
            return
        self.line(f"selected {len(report.selected)} migration(s):")
        width = max(len(label(s.migration)) for s in report.selected)
        if self.several:
            self.width = max(self.width, width + len(" on ") + max(map(len, report.aliases)))
        for item in report.selected:
            why = describe_reason(item, report.last, report.mode)
            self.line(f"  {label(item.migration):<{width}}  {why}")

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

    def step(self, key: MigrationKey, result: StepResult) -> None:
        status = {True: "ok", False: "FAILED", None: "skipped"}[result.ok]
        if result.ok is False and key in self.accepted:
            status = "accepted"
        self.line(
            f"  {result.step:<13} {self._named(label(key)):<{self.width}} {status:<7} "
            f"{result.seconds:6.2f}s"
        )
        if result.ok is False or (self.verbose and result.ok is None):
            self.line(f"      {result.error}")
        if self.verbose:
            for warning in result.warnings:
                self.line(f"      warning: {warning}")
        for lost in result.rows_lost:
            self.line(f"      warning: {lost}")
        for line in findings.step_lines(result, verbose=self.verbose):
            self.line(f"      {line}")


def _is_terminal(stream: TextIO) -> bool:
    """A terminal that understands a carriage return and ``ESC [ K`` (not ``TERM=dumb``)."""
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False
