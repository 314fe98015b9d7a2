"""Estimates at production size for one run: the stats file read before any database work,
then, once the server is known, checked against it and paired with the server's measured rates
(:mod:`.calibration`) into the :class:`~guard.safety.estimates.Estimator` the round trips use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from guard.database.server import Server
from guard.safety import calibration, statsfile
from guard.safety.estimates import Estimator, volume
from guard.safety.statsfile import Stats


@dataclass
class Estimating:
    stats: Stats
    speed_factor: float
    max_age_days: float

    @classmethod
    def load(cls, path: str, speed_factor: float, max_age_days: float) -> Estimating | None:
        """The stats file at ``path`` (None for ""), or exit 2 naming what is wrong with it."""
        if not path:
            return None
        return cls(statsfile.load(Path(path)), speed_factor, max_age_days)

    def ready(self, server: Server, say: Callable[[str], None]) -> Estimator:
        """The estimator for runs on ``server``: exit 2 if the stats come from another major
        version; the rates from the server's cache, or measured now (said)."""
        rates = calibration.rates(server, lambda version, number: statsfile.check_server(
            self.stats, number, version))
        if rates.seconds:
            say(f"calibration: measured this server's speed in {rates.seconds:.1f}s (once per "
                f"server version): rewrites {volume(rates.rewrite_bytes)}/s, scans "
                f"{volume(rates.scan_bytes)}/s, index builds {rates.index_rows:,.0f} rows/s, "
                f"foreign keys {rates.fk_rows:,.0f} rows/s")
        return Estimator(self.stats, rates, self.speed_factor)

    def notes(self) -> list[str]:
        """What the report says about the stats: where from, and whether to trust them (is
        any table of the project's models in them?)."""
        from django.apps import apps

        tables = {model._meta.db_table for model in apps.get_models(include_auto_created=True)}
        taken = self.stats.taken_at.date().isoformat() if self.stats.taken_at else "?"
        return [f"stats: {self.stats.path} ({len(self.stats.tables)} table(s) of "
                f"{self.stats.database}, PostgreSQL {self.stats.version}, taken {taken})",
                *statsfile.notes(self.stats, tables, self.max_age_days)]
