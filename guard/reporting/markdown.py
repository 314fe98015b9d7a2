"""``--format markdown``: the body of a pull request comment.

Its first line is the fixed marker :data:`MARKER`, so that a sticky-comment action (or ``gh pr
comment --edit-last``) replaces the previous comment instead of adding one per push. Then the
verdict line, a table of what fails the run (migration linked to its file and the operation's
line, step or kind, table, what to do), and the findings that do not fail it folded in
``<details>``. GitHub refuses comments over 65,536 characters: past :data:`BUDGET` the rows are
cut, with a note saying how many and where the rest is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from guard.reporting.locations import repository_root
from guard.reporting.model import Report
from guard.reporting.results import Result, collect
from guard.reporting.text import summary_line

MARKER = "<!-- migration-guard -->"
LIMIT = 65_536
BUDGET = LIMIT - 2_000
"""Room kept for the closing lines and the note on what was cut."""
_HINT = 160
_HEADER = ["| | migration | step or kind | table | what to do |", "| --- | --- | --- | --- | --- |"]


def cell(text: str) -> str:
    """Text for one table cell: HTML and pipes escaped, lines joined with ``<br>``."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _link(result: Result, environ: Mapping[str, str]) -> str:
    server, repository = environ.get("GITHUB_SERVER_URL"), environ.get("GITHUB_REPOSITORY")
    sha = environ.get("GITHUB_SHA")
    target = f"{result.path}#L{result.line}"
    if server and repository and sha:
        target = f"{server}/{repository}/blob/{sha}/{target}"
    return f"[`{result.migration or result.path}`]({target})"


def _what(result: Result) -> str:
    """The step or kind: ``forward: rewrite``, ``backward``, ``irreversible``."""
    if result.rule.startswith("safety/"):
        step = result.message.split(": ")[1] if result.message.count(": ") >= 2 else ""
        kind = f"{step}: {result.rule.removeprefix('safety/')}".strip(": ")
        return f"{kind}, {result.estimate} at production size" if result.estimate else kind
    if result.rule in ("failed-step", "schema-difference"):
        return result.message.split(": ")[1] if ": " in result.message else result.rule
    return result.rule


def _todo(result: Result) -> str:
    hints = [line.removeprefix("hint: ") for line in result.detail.splitlines()
             if line.startswith("hint: ")] or [result.detail or result.message]
    text = " ".join(hints[0].split())
    return text if len(text) <= _HINT else text[: _HINT - 1] + "…"


def _row(result: Result, environ: Mapping[str, str]) -> str:
    mark = "❌" if result.failing else "⚠️"
    return (f"| {mark} | {_link(result, environ)} | {cell(_what(result))} | "
            f"{cell(result.table)} | {cell(_todo(result))} |")


def as_markdown(report: Report, root: Path | None = None,
                environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    root = root or repository_root(Path(report.project_dir))
    results = collect(report, root)
    failing = [r for r in results if r.failing]
    others = [r for r in results if not r.failing]
    lines = [MARKER, f"### {cell(summary_line(report))}", ""]
    size = sum(len(line) + 1 for line in lines)
    cut = 0

    def add(rows: list[Result]) -> list[str]:
        nonlocal size, cut
        kept = []
        for result in rows:
            row = _row(result, environ)
            if size + len(row) + 1 > BUDGET:
                cut += 1
                continue
            kept.append(row)
            size += len(row) + 1
        return kept

    if failing:
        lines += [*_HEADER, *add(failing), ""]
        size += sum(len(h) + 1 for h in _HEADER)
    elif not others:
        lines.append("No failures and no findings.")
    if others:
        rows = add(others)
        if rows:
            lines += ["<details>", f"<summary>{len(others)} finding(s) that do not fail the "
                      "run</summary>", "", *_HEADER, *rows, "", "</details>", ""]
    if cut:
        lines.append(f"_{cut} more result(s) cut to stay under GitHub's {LIMIT:,}-character "
                     "limit: the CI log and the JSON or SARIF report have every one._")
    return "\n".join(lines) + "\n"
