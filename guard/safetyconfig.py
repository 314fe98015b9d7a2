"""The safety settings: ``--fail-on`` / ``fail_on`` and ``--no-safety`` / ``safety``.

Findings (locks, rewrites, scans, index builds; :mod:`guard.execution.findings`) are reported and
do not fail a run, unless their kind is given here: ``rewrite`` makes a forward rewrite a failure,
``backward:rewrite`` a rollback's. Checked when the options are read, so that a typo is exit 2.
"""

from __future__ import annotations

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

