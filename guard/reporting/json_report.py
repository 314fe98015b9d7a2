"""``--format json``: the report as one JSON object, the contract documented in the README."""

from __future__ import annotations

from typing import Any

from guard.execution.outcome import Outcome
from guard.planning.shards import Shard
from guard.reporting.model import Report
from guard.reporting.text import step_hint
from guard.types import MigrationKey, StepResult, label


def _step_json(report: Report, key: MigrationKey, step: StepResult) -> dict[str, Any]:
    data: dict[str, Any] = {"step": step.step, "ok": step.ok, "seconds": round(step.seconds, 4)}
    if step.error:
        data["error"] = step.error
    hint = step_hint(report, key, step)
    if hint:
        data["hint"] = hint
    if step.schema_diff:
        data["schema_diff"] = step.schema_diff
    if step.undo_sql:
        data["undo_sql"] = step.undo_sql
    if step.warnings:
        data["warnings"] = step.warnings
    if step.rows_lost:
        data["rows_lost"] = step.rows_lost
    if step.operation is not None:
        data["operation"] = step.operation + 1  # as the text says it: 1 is the first
    if step.blocked_by:
        data["blocked_by"] = [label(k) for k in step.blocked_by]
    if step.locks:
        data["locks"] = [
            {"table": lock.table, "lock_mode": lock.lock_mode, "seconds": round(lock.seconds, 4),
             "operation": None if lock.operation is None else lock.operation + 1,
             "statement": lock.statement, "created_here": lock.new}
            for lock in step.locks
        ]
    return data


def _findings_json(report: Report) -> list[dict[str, Any]]:
    return [
        {
            "migration": label(key), "alias": alias, "direction": step.step,
            "kind": finding.kind, "table": finding.table, "lock_mode": finding.lock_mode,
            "seconds": round(finding.seconds, 4), "statement": finding.statement,
            "operation": None if finding.operation is None else finding.operation + 1,
            "detail": finding.detail, "hint": finding.hint,
            "estimate": finding.estimate.to_json() if finding.estimate else None,
            "failing": report.fails((alias, key, step, finding)),
            **({"accepted": report.accepted[key]} if key in report.accepted else {}),
        }
        for alias, key, step, finding in report.findings()
    ]


def _base_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "migrations": outcome.base_count,
        "seconds": round(outcome.base_seconds, 4),
        "cached": outcome.base_cached,
        "reused": outcome.base_reused,
        "restored": outcome.base_restored,
        **({"error": outcome.base_error} if outcome.base_error else {}),
        **({"rows": outcome.seeded.to_dict()} if outcome.seeded is not None else {}),
    }


def _rows_json(report: Report) -> dict[str, Any] | None:
    rows = report.rows
    if rows is None:
        return None
    return {"per_model": rows.count, "data_seed": rows.data_seed,
            "seed_function": rows.function or None,
            "fixtures": [str(f) for f in rows.fixtures]}


def _shard_json(shard: Shard | None) -> dict[str, Any] | None:
    if shard is None:
        return None
    return {"index": shard.index, "count": shard.count, "apps": list(shard.apps),
            "migrations": [label(k) for k in shard.owned],
            "full_run": [label(k) for k in shard.everything]}


def as_json(report: Report) -> dict[str, Any]:
    return {
        "mode": report.mode,
        "passed": report.passed,
        "seconds": round(report.seconds, 3),
        "timings": [phase.to_dict() for phase in report.timings],
        "last": report.last,
        "shard": _shard_json(report.shard),
        **({"merged_shards": report.merged} if report.merged else {}),
        "project": {"dir": report.project_dir, "settings": report.settings},
        "database": report.database,
        "selected": [
            {
                "migration": label(s.migration),
                "reason": s.reason,
                **({"because_of": [label(k) for k in s.because_of]} if s.because_of else {}),
            }
            for s in report.selected
        ],
        "ignored": [{"path": p, "reason": r} for p, r in report.ignored],
        "notes": report.notes,
        "rows": _rows_json(report),
        "base": _base_json(report.outcomes.get(report.aliases[0], Outcome())),
        "aliases": [
            {"alias": alias, "base": _base_json(report.outcomes.get(alias, Outcome()))}
            for alias in report.aliases
        ],
        "not_run": [{"migration": label(k), "reason": why} for k, why in report.not_run.items()],
        "not_tested": report.not_tested,
        "irreversible": [
            {"migration": label(i.migration), "operation": i.operation, "accepted": ok,
             "index": i.index + 1, **({"fix": i.fix} if i.fix else {})}
            for i, ok in report.irreversible
        ],
        "results": [
            {
                "migration": label(s.migration),
                "alias": alias,
                "file": report.files.get(s.migration),
                "passed": report.passed_on(s.migration, alias),
                "ran": report.ran_on(s.migration, alias),
                **({"blocked_by": [label(k) for k in blocked]}
                   if (blocked := report.blocked_on(s.migration, alias)) else {}),
                **({"accepted": report.accepted[s.migration]}
                   if s.migration in report.accepted else {}),
                "steps": [_step_json(report, s.migration, step)
                          for step in report.steps(s.migration, alias)],
            }
            for s in report.selected
            for alias in report.aliases
        ],
        "safety": {"measured": report.measured, "fail_on": sorted(report.fail_on),
                   "max_blocking_seconds": report.budget},
        "findings": _findings_json(report),
        "checks": [
            {"name": c.name, "ok": c.ok, "errors": c.errors, "warnings": c.warnings,
             **({"hint": c.hint} if c.hint and not c.ok else {})}
            for c in report.checks
        ],
    }
