"""The package's layout: seven parts as subpackages, layered, with no import circle anywhere.

Imports are read with :mod:`ast`, those inside functions included (a lazy import that closes a
circle is still a circle), those under ``if TYPE_CHECKING:`` left out (they never run). Importing
``guard.a.b`` also runs ``guard/a/__init__.py``, so it counts as importing ``guard.a`` too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "guard"
MAX_LINES = 400

PARTS = ("selection", "planning", "database", "rows", "safety", "execution", "reporting")
VOCABULARY = {"guard", "guard.errors", "guard.types", "guard.timings"}
"""What every module may import: the package itself, the exit codes and errors, the shared types,
the run's clock."""

ALLOWED: dict[str, set[str]] = {
    "guard.planning": set(),
    "guard.selection": {"guard.planning", "guard.config"},
    "guard.database": {"guard.planning"},
    "guard.rows": {"guard.planning", "guard.database"},
    "guard.safety": {"guard.planning", "guard.database"},
    "guard.execution": {"guard.planning", "guard.database", "guard.rows", "guard.safety"},
    "guard.reporting": {"guard.planning", "guard.execution", "guard.rows", "guard.safety"},
}
"""What each part may import besides itself and the vocabulary: the parts form layers, from
planning (Django's graph, no database) up to reporting (which reads everyone's results)."""

GIT_SIDE = {
    "guard.selection.git",
    "guard.selection.base",
    "guard.selection.push",
    "guard.selection.changes",
}
"""Git's side of selection: the Django side (``guard.check`` and what it imports) has none of it."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(name: str, path: Path) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def imports(name: str) -> set[str]:
    """The modules of the package that ``name`` imports, with the packages that run on the way."""
    direct: set[str] = set()
    for imported in _imported_names(name, MODULES[name]):
        parts = imported.split(".")
        for end in range(2, len(parts) + 1):  # guard.a.b runs guard/a/__init__.py first
            candidate = ".".join(parts[:end])
            if candidate in MODULES and candidate != name:
                direct.add(candidate)
    return direct


GRAPH = {name: imports(name) for name in MODULES}


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for following in GRAPH[todo.pop()]:
            if following not in seen:
                seen.add(following)
                todo.append(following)
    return seen


def part_of(name: str) -> str | None:
    for part in PARTS:
        prefix = f"guard.{part}"
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return None


def test_the_parts_are_subpackages_and_their_init_files_import_nothing() -> None:
    for part in PARTS:
        init = PACKAGE / part / "__init__.py"
        assert init.is_file(), f"guard/{part}/ is not a package"
        assert GRAPH[f"guard.{part}"] == set(), f"guard/{part}/__init__.py imports something"
        assert ast.get_docstring(ast.parse(init.read_text())), f"guard/{part}: no docstring"


def test_no_import_circle() -> None:
    circles = sorted(
        " <-> ".join(sorted(m for m in GRAPH if m == name or (name in reachable(m)
                                                              and m in reachable(name))))
        for name in GRAPH
        if name in reachable(name)
    )
    assert circles == [], "import circles: " + "; ".join(dict.fromkeys(circles))


def test_each_part_imports_only_the_layers_below_it() -> None:
    wrong = []
    for name, imported in GRAPH.items():
        part = part_of(name)
        if part is None:
            continue
        for other in imported:
            allowed = {part, *ALLOWED[part]}
            if other in VOCABULARY or any(
                other == a or other.startswith(a + ".") or a.startswith(other + ".")
                for a in allowed  # the last: a package whose __init__ runs on the way
            ):
                continue
            wrong.append(f"{name} imports {other}")
    assert wrong == []


def test_vocabulary_imports_no_part() -> None:
    assert GRAPH["guard.types"] == set()
    assert GRAPH["guard.errors"] == set()
    assert GRAPH["guard.timings"] == set()


def test_the_django_side_imports_nothing_of_git() -> None:
    for start in ("guard.worker", "guard.check"):
        assert reachable(start) & GIT_SIDE == set(), start


def test_importing_the_worker_loads_no_gitpython() -> None:
    code = (
        "import sys, guard.worker, guard.check; "
        "bad = sorted(m for m in sys.modules if m == 'git' or m.startswith('git.') "
        "or m in ('guard.selection.git', 'guard.selection.changes')); "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=PACKAGE.parent, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]}: {lines} lines, more than {MAX_LINES}"
