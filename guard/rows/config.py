"""The rows settings of ``[tool.migration-guard]``: ``rows``, ``data_seed``, ``seed``, ``fixtures``.

Checked when the configuration is read, before any work, so that a typo is exit 2 naming the
key; what they do is :mod:`guard.rows.seeding`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from guard.errors import FatalError

_SEED = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def fixture_paths(names: Sequence[str], pyproject: Path | None, root: Path) -> tuple[Path, ...]:
    """The ``fixtures`` files, relative to pyproject.toml; each must exist."""
    folder = pyproject.parent if pyproject is not None else root
    found = []
    for name in names:
        path = (folder / Path(name).expanduser()).resolve()
        if not path.is_file():
            raise FatalError(
                f"{pyproject or root}: [tool.migration-guard] fixtures: {name} does not exist "
                f"(looked for {path}); paths are relative to pyproject.toml."
            )
        found.append(path)
    return tuple(found)


def validate(table: Mapping[str, Any], path: Path) -> None:
    """Exit 2, naming the key, for a rows setting of the wrong kind."""
    _expect(table, path, "rows", int)
    if table.get("rows", 0) < 0:
        raise FatalError(f"{path}: [tool.migration-guard] rows must be 0 (no generated rows) or "
                         f"more, not {table['rows']}.")
    _expect(table, path, "data_seed", int)
    _expect(table, path, "seed", str)
    if "seed" in table and not _SEED.match(table["seed"]):
        raise FatalError(
            f'{path}: [tool.migration-guard] seed = {table["seed"]!r} is not a function: write '
            '"package.module:function" (called as function(apps, schema_editor) on the base).'
        )
    fixtures = table.get("fixtures", [])
    if not isinstance(fixtures, list) or not all(isinstance(x, str) and x for x in fixtures):
        raise FatalError(
            f'{path}: fixtures must be a list of fixture files, relative to pyproject.toml, e.g. '
            'fixtures = ["shop/fixtures/catalog.json"].'
        )


def _expect(table: Mapping[str, Any], path: Path, key: str, kind: type) -> None:
    if key in table and (not isinstance(table[key], kind) or isinstance(table[key], bool)):
        raise FatalError(
            f"{path}: [tool.migration-guard] {key} must be a {kind.__name__}, "
            f"not {table[key]!r}."
        )
