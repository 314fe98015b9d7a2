"""``--format sarif``: SARIF 2.1.0 for GitHub code scanning (and any SARIF viewer).

One run; ``tool.driver`` names migration-guard with one rule per kind of result
(:data:`guard.reporting.results.RULES`), each with a short and a full description and a help
text. Every failure and finding is a result: ``error`` where it fails the run, ``warning`` where
it does not (accepted, or under the blocking-time budget), at the migration file (a URI relative
to ``%SRCROOT%``, the repository's root) on the line of its operation, with
``partialFingerprints`` that stay the same over runs of the same content. A clean run is a valid
log with no results.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from guard import version
from guard.reporting.locations import repository_root
from guard.reporting.model import Report
from guard.reporting.results import RULES, collect

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/migration-guard/migration-guard"
FINGERPRINT = "migrationGuard/v1"


def as_sarif(report: Report, root: Path | None = None) -> str:
    root = root or repository_root(Path(report.project_dir))
    results = collect(report, root)
    ids = list(RULES)
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "migration-guard", "version": version(),
                "informationUri": INFORMATION_URI,
                "rules": [{
                    "id": rule.id, "name": rule.name,
                    "shortDescription": {"text": rule.short},
                    "fullDescription": {"text": rule.full},
                    "help": {"text": rule.help},
                    "defaultConfiguration": {"level": "error"},
                } for rule in RULES.values()],
            }},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": root.resolve().as_uri() + "/"}},
            "results": [{
                "ruleId": result.rule, "ruleIndex": ids.index(result.rule),
                "level": "error" if result.failing else "warning",
                "message": {"text": "\n".join(filter(None, [result.message, result.detail]))},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": quote(result.path), "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": result.line},
                }}],
                "partialFingerprints": {FINGERPRINT: result.fingerprint},
            } for result in results],
        }],
    }
    return json.dumps(log, indent=2) + "\n"
