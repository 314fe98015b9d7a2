"""``migration-guard report merge a.json b.json ...``: the shards of a full run as one report.

Each shard's JSON report says which shard it is (``shard``: I of N, the migrations that belong
to it, and the unsharded run's selection). The merge checks that the reports make one whole
(every shard of the same N present once, the same selection, the shards' parts disjoint and
together that selection), then builds one :class:`~guard.reporting.model.Report`: each
migration's results from the shard it belongs to, unless another shard, which rolled it back
as a dependent of its own apps, saw it fail. The writers render it as after an unsharded run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from guard.errors import FatalError
from guard.execution.checks import CheckResult
from guard.execution.outcome import Outcome
from guard.planning.shards import Shard
from guard.reporting.loading import read
from guard.reporting.model import Report
from guard.types import MigrationKey, label

HOW = ("Give the JSON report of every shard of one run, each written by `migration-guard check "
       "--full --shard I/N --format json=FILE` on the same commit.")


class ShardsError(FatalError):
    """The reports do not make one full run (exit 2)."""


def _shards(reports: Sequence[tuple[Path, Report]]) -> dict[int, tuple[Path, Report, Shard]]:
    """Each shard by index, once the reports are known to make one whole."""
    if not reports:
        raise ShardsError(f"No report to merge. {HOW}")
    found: dict[int, tuple[Path, Report, Shard]] = {}
    for path, report in reports:
        shard = report.shard
        if shard is None:
            raise ShardsError(f"{path} is not a shard's report: it comes from a run without "
                              f"--shard. {HOW}")
        first = next(iter(found.values()), None)
        if first is not None and shard.count != first[2].count:
            raise ShardsError(f"{path} is shard {shard.index}/{shard.count}, but {first[0]} is "
                              f"shard {first[2].index}/{first[2].count}: the reports come from "
                              f"runs split in different ways. {HOW}")
        if shard.index in found:
            raise ShardsError(f"{found[shard.index][0]} and {path} are both shard "
                              f"{shard.index}/{shard.count}: two reports overlap. {HOW}")
        if first is not None and shard.everything != first[2].everything:
            raise ShardsError(f"{path} and {first[0]} come from different histories: their "
                              f"full runs select different migrations (run every shard on the "
                              f"same commit). {HOW}")
        found[shard.index] = (path, report, shard)
    count = next(iter(found.values()))[2].count
    missing = [str(i) for i in range(1, count + 1) if i not in found]
    if missing:
        raise ShardsError(f"Shard(s) {', '.join(missing)} of {count} missing: only "
                          f"{len(found)} report(s) given. {HOW}")
    owner: dict[MigrationKey, int] = {}
    for index, (path, _, shard) in sorted(found.items()):
        for key in shard.owned:
            if key in owner:
                raise ShardsError(f"{label(key)} belongs to shard {owner[key]} and to shard "
                                  f"{index} ({path}): the shards overlap. {HOW}")
            owner[key] = index
    everything = next(iter(found.values()))[2].everything
    left = [label(k) for k in everything if k not in owner]
    if left or len(owner) != len(everything):
        raise ShardsError(f"No shard owns {', '.join(left) or 'some migrations'}: the reports "
                          f"do not make the whole full run. {HOW}")
    return found


def merge(paths: Sequence[Path]) -> tuple[Report, list[str]]:
    """The merged report, and one line per shard for people."""
    found = _shards([(path, read(path)) for path in paths])
    ordered = [found[i] for i in sorted(found)]
    first = ordered[0][1]
    merged = Report(
        mode="full", project_dir=first.project_dir, settings=first.settings, last=first.last,
        aliases=list(first.aliases), rows=first.rows, fail_on=first.fail_on, budget=first.budget,
        measured=first.measured, not_tested=list(first.not_tested),
        seconds=max(report.seconds for _, report, _ in ordered), merged=len(ordered),
    )
    providers = sorted({r.database.get("provider", "?") for _, r, _ in ordered})
    merged.database = {"provider": "/".join(providers),
                       "server": first.database.get("server", ""),
                       "reason": f"{len(ordered)} shards, each on a server of its own"}
    merged.notes = [n for n in first.notes if not n.startswith("shard ")]
    for alias in merged.aliases:
        merged.outcomes[alias] = _base(alias, ordered)
    for key in ordered[0][2].everything:
        _take(merged, key, ordered)
    merged.checks = _checks(ordered)
    unexplained = [f"shard {shard.index}/{shard.count} ({path}) failed" for path, report, shard
                   in ordered if not report.passed]
    if unexplained and merged.passed:  # a failure the merged results do not show: still one
        merged.checks.append(CheckResult("shard reports", False, unexplained))
    lines = []
    for path, report, shard in ordered:
        verdict = "passed" if report.passed else "FAILED"
        lines.append(f"shard {shard.index}/{shard.count} ({path}): {verdict}, "
                     f"{', '.join(shard.apps) or 'no app'}: {len(shard.owned)} migration(s) "
                     f"of its own, {len(report.selected)} rolled back, {report.seconds:.1f}s")
    total = sum(report.seconds for _, report, _ in ordered)
    merged.notes.append(f"merged {len(ordered)} shards: the slowest took {merged.seconds:.1f}s, "
                        f"all together {total:.1f}s")
    return merged, lines


def _take(merged: Report, key: MigrationKey, ordered: Sequence[tuple[Path, Report, Shard]]
          ) -> None:
    """``key``'s results from the shard it belongs to, or from one that saw it fail."""
    owner = next(report for _, report, shard in ordered if key in shard.owned)
    failed = [report for _, report, _ in ordered
              if report is not owner and any(s.migration == key for s in report.selected)
              and report.migration_failed(key) and key not in report.not_run]
    source = failed[0] if failed and owner.migration_passed(key) else owner
    merged.selected.append(next(s for s in owner.selected if s.migration == key))
    for field in (merged.files, merged.sources):
        if key in source.files:
            field[key] = source.files[key]
    if key in source.accepted:
        merged.accepted[key] = source.accepted[key]
    if key in source.not_run:
        merged.not_run[key] = source.not_run[key]
    merged.irreversible += [(i, ok) for i, ok in source.irreversible if i.migration == key]
    for alias in merged.aliases:
        outcome = source.outcomes.get(alias)
        if outcome is None:
            continue
        if key in outcome.steps:
            merged.outcomes[alias].steps[key] = outcome.steps[key]
        if key in outcome.denied:
            merged.outcomes[alias].denied.add(key)


def _base(alias: str, ordered: Sequence[tuple[Path, Report, Shard]]) -> Outcome:
    """The base on ``alias``: the slowest shard's figures, the first error any shard met."""
    outcomes = [(shard, r.outcomes.get(alias, Outcome())) for _, r, shard in ordered]
    slowest = max((o for _, o in outcomes), key=lambda o: o.base_seconds)
    errors = [f"shard {s.index}/{s.count}: {o.base_error}" for s, o in outcomes if o.base_error]
    return Outcome(
        base_error=errors[0] if errors else "", base_seconds=slowest.base_seconds,
        base_count=slowest.base_count, base_cached=all(o.base_cached for _, o in outcomes),
        base_reused=slowest.base_reused,
        base_restored=all(o.base_restored for _, o in outcomes), seeded=slowest.seeded,
    )


def _checks(ordered: Sequence[tuple[Path, Report, Shard]]) -> list[CheckResult]:
    """Every check once: a shard's failure of it if one failed (they ran the same checks)."""
    chosen: dict[str, CheckResult] = {}
    for _, report, _ in ordered:
        for check in report.checks:
            if check.name not in chosen or (chosen[check.name].ok and not check.ok):
                chosen[check.name] = check
    return list(chosen.values())
