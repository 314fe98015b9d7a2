"""Where a result is in the repository: the migration's file, relative to the repository's
root, and the line of the operation at fault.

The line is that of the N-th entry of the migration's ``operations`` list when the operation is
known (a failed step's, a finding's, an irreversible operation's), else the line of ``class
Migration``; both are found by parsing the file with :mod:`ast`, never by importing it. The
GitHub annotations, SARIF, the GitLab report and the pull request comment all place results
through :class:`Locator`, so they agree.
"""

from __future__ import annotations

import ast
from pathlib import Path

from guard.reporting.model import Report
from guard.types import MigrationKey


def operation_nodes(path: str) -> tuple[int | None, list[ast.expr]]:
    """(the line of ``class Migration``, each entry of its ``operations`` list as parsed);
    (None, []) when the file cannot be read or has no such class."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None, []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            for statement in node.body:
                value = _operations(statement)
                if isinstance(value, (ast.List, ast.Tuple)):
                    return node.lineno, list(value.elts)
            return node.lineno, []
    return None, []


def operation_lines(path: str) -> tuple[int | None, list[int]]:
    """(the line of ``class Migration``, the line of each entry of its ``operations`` list)."""
    class_line, nodes = operation_nodes(path)
    return class_line, [node.lineno for node in nodes]


def _operations(statement: ast.stmt) -> ast.expr | None:
    """The value of ``operations = ...`` (or ``operations: list = ...``), else None."""
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign):
        targets = [statement.target]
    else:
        return None
    if any(isinstance(t, ast.Name) and t.id == "operations" for t in targets):
        return statement.value
    return None


def relative(path: str, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX path; unchanged when it lies outside."""
    try:
        root = root.resolve()
        return Path(path).resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        return path


def repository_root(start: Path) -> Path:
    """The nearest folder from ``start`` upwards with a ``.git`` (a folder, or a worktree's
    file), else ``start``: what SARIF and GitLab paths are relative to."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


class Locator:
    """``(file, line)`` of a migration's operation, each file parsed once."""

    def __init__(self, report: Report, root: Path) -> None:
        self.report = report
        self.root = root
        self._parsed: dict[MigrationKey, tuple[int | None, list[int]]] = {}

    def __call__(self, key: MigrationKey, index: int | None = None
                 ) -> tuple[str | None, int | None]:
        shown = self.report.files.get(key)
        if shown is None:
            return None, None
        if key not in self._parsed:
            self._parsed[key] = operation_lines(self.report.sources.get(key, shown))
        class_line, lines = self._parsed[key]
        path = relative(shown, self.root)
        if index is not None and index < len(lines):
            return path, lines[index]
        return path, class_line
