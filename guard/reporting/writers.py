"""Where the reports go: each format to its file or, one of them, to stdout.

:data:`RENDERERS` maps each ``--format`` to the function that renders it, so that ``--format
json`` leaves stdout holding exactly one JSON object. Under GitHub Actions,
:mod:`guard.reporting.github` adds workflow annotations and the job's step summary.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from guard.errors import FatalError
from guard.reporting.model import Report
from guard.reporting.text import summary_line, write_text


def _text(report: Report) -> str:
    text = io.StringIO()
    write_text(report, text)
    return text.getvalue()


def _json(report: Report) -> str:
    from guard.reporting.json_report import as_json  # the formats a run asks for, imported

    return json.dumps(as_json(report), indent=2) + "\n"


def _junit(report: Report) -> str:
    from guard.reporting.junit import as_junit

    return as_junit(report)


def _sarif(report: Report) -> str:
    from guard.reporting.sarif import as_sarif

    return as_sarif(report)


def _gitlab(report: Report) -> str:
    from guard.reporting.gitlab import as_gitlab

    return as_gitlab(report)


def _markdown(report: Report) -> str:
    from guard.reporting.markdown import as_markdown

    return as_markdown(report)


RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": _text, "json": _json, "junit": _junit, "sarif": _sarif, "gitlab": _gitlab,
    "markdown": _markdown,
}
"""Each report format, rendered as the text of a file."""


def render(report: Report, fmt: str) -> str:
    """One report in ``fmt`` (text, json, junit, sarif, gitlab, markdown), as a file's text."""
    return RENDERERS.get(fmt, _text)(report)


def write(
    report: Report,
    formats: Sequence[tuple[str, str | None]],
    stdout: TextIO,
    *,
    github: bool = False,
    environ: Mapping[str, str] | None = None,
    stderr: TextIO | None = None,
) -> None:
    """Write each report to its file or stdout; with nothing on stdout, the summary line goes
    there. Under GitHub Actions (``GITHUB_ACTIONS=true``, unless ``github`` is off) also the
    workflow annotations (on stdout, or on stderr when stdout holds another format) and the
    step summary."""
    stderr = stderr or sys.stderr
    on_stdout = ""
    for fmt, file in formats:
        if file is None:
            on_stdout = fmt
            stdout.write(render(report, fmt))
            continue
        try:
            Path(file).parent.mkdir(parents=True, exist_ok=True)
            with open(file, "w", encoding="utf-8") as out:
                out.write(render(report, fmt))
        except OSError as exc:
            raise FatalError(f"Cannot write the {fmt} report to {file}: {exc}.") from exc
    if not on_stdout:
        stdout.write(summary_line(report) + "\n")
    environ = environ if environ is not None else {}
    if github and environ.get("GITHUB_ACTIONS") == "true":
        from guard.reporting import github as gh

        annotations = stdout if on_stdout in ("", "text") else stderr
        for line in gh.error_lines(report, environ):
            annotations.write(line + "\n")
        annotations.flush()
        gh.append_summary(report, environ, warn=stderr)
