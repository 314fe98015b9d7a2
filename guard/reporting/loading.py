"""A JSON report read back into a :class:`~guard.reporting.model.Report`, so that every writer
can render it again: what ``migration-guard report merge`` does with the shards' reports.

It reads the contract :mod:`guard.reporting.json_report` writes; anything else is a
:class:`ReportError` that says what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guard.errors import FatalError
from guard.execution.checks import CheckResult
from guard.execution.outcome import Outcome
from guard.planning.reversibility import Irreversible
from guard.planning.shards import Shard
from guard.reporting.model import Report
from guard.rows.seeding import RowSettings, Seeded
from guard.types import Estimate, Finding, LockHeld, MigrationKey, Selected, StepResult


class ReportError(FatalError):
    """A file that is not a migration-guard JSON report (exit 2)."""


def key_of(name: str) -> MigrationKey:
    """``"app.0002_x"`` as ``("app", "0002_x")``: an app label holds no dot."""
    app, _, migration = name.partition(".")
    if not app or not migration:
        raise ValueError(f"not a migration name: {name!r}")
    return app, migration


def _index(value: int | None) -> int | None:
    """The reports count operations from 1; the model from 0."""
    return None if value is None else int(value) - 1


def _step(data: dict[str, Any]) -> StepResult:
    return StepResult(
        step=data["step"], ok=data["ok"], seconds=float(data.get("seconds", 0.0)),
        error=data.get("error", ""), schema_diff=list(data.get("schema_diff", [])),
        warnings=list(data.get("warnings", [])), hint=data.get("hint", ""),
        undo_sql=list(data.get("undo_sql", [])), rows_lost=list(data.get("rows_lost", [])),
        operation=_index(data.get("operation")),
        blocked_by=[key_of(k) for k in data.get("blocked_by", [])],
        locks=[LockHeld(lock["table"], lock["lock_mode"], _index(lock.get("operation")),
                        lock.get("statement", ""), float(lock.get("seconds", 0.0)),
                        bool(lock.get("created_here", False)))
               for lock in data.get("locks", [])],
    )


def _outcome(base: dict[str, Any]) -> Outcome:
    return Outcome(
        base_error=base.get("error", ""), base_seconds=float(base.get("seconds", 0.0)),
        base_count=int(base.get("migrations", 0)), base_cached=bool(base.get("cached")),
        base_reused=int(base.get("reused", 0)), base_restored=bool(base.get("restored")),
        seeded=Seeded.from_dict(base["rows"]) if base.get("rows") else None,
    )


def _shard(data: dict[str, Any] | None) -> Shard | None:
    if data is None:
        return None
    return Shard(index=int(data["index"]), count=int(data["count"]),
                 apps=tuple(data.get("apps", ())), chosen={},
                 owned=tuple(key_of(m) for m in data["migrations"]),
                 everything=tuple(key_of(m) for m in data["full_run"]), cost=0.0)


def from_json(data: dict[str, Any]) -> Report:
    """The report that :func:`guard.reporting.json_report.as_json` wrote ``data`` from."""
    rows = data.get("rows")
    report = Report(
        mode=data["mode"], project_dir=data["project"]["dir"],
        settings=data["project"]["settings"], last=int(data.get("last", 5)),
        database=dict(data.get("database", {})),
        selected=[Selected(key_of(s["migration"]), s["reason"],
                           tuple(key_of(k) for k in s.get("because_of", ())))
                  for s in data["selected"]],
        ignored=[(i["path"], i["reason"]) for i in data.get("ignored", [])],
        notes=list(data.get("notes", [])),
        irreversible=[(Irreversible(key_of(i["migration"]), i["operation"],
                                    int(i.get("index", 1)) - 1, i.get("fix", "")),
                       bool(i["accepted"])) for i in data.get("irreversible", [])],
        checks=[CheckResult(c["name"], bool(c["ok"]), list(c.get("errors", [])),
                            list(c.get("warnings", [])), c.get("hint", ""))
                for c in data.get("checks", [])],
        aliases=[a["alias"] for a in data["aliases"]],
        outcomes={a["alias"]: _outcome(a["base"]) for a in data["aliases"]},
        not_run={key_of(n["migration"]): n["reason"] for n in data.get("not_run", [])},
        not_tested=list(data.get("not_tested", [])),
        rows=None if rows is None else RowSettings(
            count=int(rows["per_model"]), data_seed=int(rows["data_seed"]),
            function=rows.get("seed_function") or "",
            fixtures=tuple(Path(f) for f in rows.get("fixtures", []))),
        fail_on=frozenset(data.get("safety", {}).get("fail_on", [])),
        budget=data.get("safety", {}).get("max_blocking_seconds"),
        measured=bool(data.get("safety", {}).get("measured", True)),
        seconds=float(data.get("seconds", 0.0)),
        shard=_shard(data.get("shard")),
    )
    for result in data["results"]:
        key, alias = key_of(result["migration"]), result["alias"]
        if result.get("file"):
            report.files[key] = report.sources[key] = result["file"]
        if "accepted" in result:
            report.accepted[key] = result["accepted"]
        outcome = report.outcomes.setdefault(alias, Outcome())
        outcome.steps[key] = [_step(step) for step in result["steps"]]
        if not result.get("ran", True):
            outcome.denied.add(key)
    for found in data.get("findings", []):
        key, alias = key_of(found["migration"]), found["alias"]
        steps = report.outcomes[alias].steps.get(key, [])
        step = next(s for s in steps if s.step == found["direction"])
        step.findings.append(Finding(
            kind=found["kind"], table=found["table"], lock_mode=found["lock_mode"],
            seconds=float(found["seconds"]), statement=found["statement"],
            detail=found["detail"], hint=found["hint"], operation=_index(found["operation"]),
            estimate=Estimate.from_json(found.get("estimate"))))
    return report


def read(path: Path) -> Report:
    """The report in the JSON file ``path``; a :class:`ReportError` naming it if it is not
    one."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"Cannot read the report {path}: {exc.strerror or exc}.") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path} is not a JSON report: {exc}. Give the files that "
                          "`migration-guard check --format json=FILE` wrote.") from exc
    try:
        return from_json(data)
    except (KeyError, TypeError, ValueError, StopIteration, AttributeError) as exc:
        raise ReportError(
            f"{path} is not a migration-guard JSON report (or one of another version): "
            f"{type(exc).__name__} {exc}. Give the files that "
            "`migration-guard check --format json=FILE` wrote."
        ) from exc
