"""The safety settings: ``--fail-on`` / ``fail_on``, ``--no-safety`` / ``safety``, and the
estimates at production size: ``--stats`` / ``stats``, ``speed_factor``, ``max_stats_age_days``,
``--max-blocking-seconds`` / ``max_blocking_seconds``.

Findings (locks, rewrites, scans, index builds; :mod:`guard.safety.findings`) are reported and
do not fail a run, unless their kind is given here: ``rewrite`` makes a forward rewrite a failure,
``backward:rewrite`` a rollback's. Checked when the options are read, so that a typo is exit 2.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from guard.errors import FatalError
from guard.types import KINDS


def fail_on(values: Iterable[str], where: str) -> frozenset[str]:
    """The kinds that fail the run: ``KIND`` (forward) or ``backward:KIND``, comma-separated
    or one per value."""
    found = set()
    for value in values:
        for word in value.split(","):
            word = word.strip()
            if not word:
                continue
            kind = word.removeprefix("backward:")
            if kind not in KINDS:
                raise FatalError(
                    f"{where}: {word!r} is not a kind of finding: give "
                    f"{', '.join(KINDS)}, or backward:KIND for a rollback's "
                    "(e.g. --fail-on rewrite,blocking-index,backward:rewrite)."
                )
            found.add(word)
    return frozenset(found)


def validate(table: Mapping[str, Any], path: Path) -> None:
    """Exit 2, naming the key, for a safety setting of the wrong kind."""
    values = table.get("fail_on", [])
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise FatalError(
            f'{path}: [tool.migration-guard] fail_on must be a list of kinds of finding, e.g. '
            f'fail_on = ["rewrite", "blocking-index", "backward:rewrite"].'
        )
    fail_on(values, f"{path}: [tool.migration-guard] fail_on")
    if "safety" in table and not isinstance(table["safety"], bool):
        raise FatalError(f"{path}: [tool.migration-guard] safety must be true or false, "
                         f"not {table['safety']!r}.")
    _validate_estimates(table, path)


ESTIMATE_KEYS = ("stats", "speed_factor", "max_stats_age_days", "max_blocking_seconds")
"""The keys of estimates at production size: the stats file, how much faster production is,
when the stats count as old, and the time budget."""


def _positive(value: object, where: str, unit: str = "a number of seconds") -> float:
    """A number above 0 (seconds, days, a factor), or exit 2 saying what it is not."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not seconds > 0 or seconds == float("inf"):
        raise FatalError(f"{where} must be {unit} above 0 (e.g. 5 or 0.5), not {value!r}.")
    return seconds


def estimating(table: Mapping[str, Any], stats: str | None, budget: str | None, here: Path,
               pyproject: Path | None) -> dict[str, Any]:
    """The options of estimates (flags over the config), checked: a budget needs stats."""
    path = stats or ""
    if not path and table.get("stats"):
        path = str(table["stats"])
        if pyproject is not None:
            path = os.path.normpath(pyproject.parent / Path(path).expanduser())
    elif path:
        path = os.path.normpath(here / Path(path).expanduser())
    given = budget if budget is not None else table.get("max_blocking_seconds")
    seconds = None if given is None else _positive(
        given, "--max-blocking-seconds" if budget is not None
        else "[tool.migration-guard] max_blocking_seconds")
    if seconds is not None and not path:
        raise FatalError(
            "--max-blocking-seconds needs production's sizes to estimate each finding against: "
            "give --stats FILE (or stats = \"FILE\" in [tool.migration-guard]), made by "
            "`migration-guard stats --db URL --output FILE`."
        )
    return {"stats": path, "max_blocking_seconds": seconds,
            "speed_factor": float(table.get("speed_factor", 1.0)),
            "max_stats_age_days": float(table.get("max_stats_age_days", 30.0))}


def _validate_estimates(table: Mapping[str, Any], path: Path) -> None:
    if "stats" in table and (not isinstance(table["stats"], str) or not table["stats"]):
        raise FatalError(f'{path}: [tool.migration-guard] stats must be the path of a stats '
                         f'file, e.g. stats = "ci/production-stats.json".')
    for key, unit in (("speed_factor", "a factor"), ("max_stats_age_days", "a number of days")):
        if key in table:
            _positive(table[key], f"{path}: [tool.migration-guard] {key}", unit)
    if "max_blocking_seconds" in table:
        _positive(table["max_blocking_seconds"],
                 f"{path}: [tool.migration-guard] max_blocking_seconds")
