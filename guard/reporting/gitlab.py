"""``--format gitlab``: the GitLab Code Quality report, shown in the merge request's widget and
diff (``artifacts: reports: codequality``).

A JSON array; each item has ``description``, ``check_name`` (the rule), a ``fingerprint``
unique in the report and stable over runs of the same content, a ``severity`` (``blocker`` for
a failed step or base, ``critical`` for a failing finding, an irreversible operation or a failed
check, ``minor`` for a finding that does not fail the run, ``info`` for an accepted failure) and
``location.path`` relative to the repository's root with ``location.lines.begin`` the
operation's line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from guard.reporting.locations import repository_root
from guard.reporting.model import Report
from guard.reporting.results import Result, collect


def severity(result: Result) -> str:
    if not result.failing:
        return "minor" if result.rule.startswith("safety/") else "info"
    if result.rule in ("failed-step", "schema-difference", "base-failed"):
        return "blocker"
    return "critical"


def as_gitlab(report: Report, root: Path | None = None) -> str:
    root = root or repository_root(Path(report.project_dir))
    items, seen = [], set()
    for result in collect(report, root):
        fingerprint = hashlib.md5(result.fingerprint.encode(), usedforsecurity=False).hexdigest()
        number = 1
        while fingerprint in seen:  # the same result twice (e.g. two identical statements)
            number += 1
            fingerprint = hashlib.md5(f"{result.fingerprint}:{number}".encode(),
                                      usedforsecurity=False).hexdigest()
        seen.add(fingerprint)
        items.append({
            "description": "\n".join(filter(None, [result.message, result.detail])),
            "check_name": result.rule, "fingerprint": fingerprint,
            "severity": severity(result),
            "location": {"path": result.path, "lines": {"begin": result.line}},
        })
    return json.dumps(items, indent=2) + "\n"
