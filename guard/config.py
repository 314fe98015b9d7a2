"""What a run was asked to do: command-line flags over ``[tool.migration-guard]`` in pyproject."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guard.database.server import parse_url
from guard.errors import FatalError
from guard.planning import shards
from guard.reporting.destinations import ReportTarget, parse_formats
from guard.rows import config as rowsconfig
from guard.safety import config as safetyconfig
from guard.timings import Exported

Mode = Literal["auto", "changed", "full"]
DEFAULT_LAST = 5

KNOWN_KEYS = {
    "settings", "db", "last", "allow_irreversible", "docker_image", "base", "python",
    "semantic_diff", "cache_size", "lock_timeout", "statement_timeout", "accept", "pg_bindir",
    "databases", "rows", "data_seed", "seed", "fixtures", "fail_on", "safety", "cache_dir",
    "jobs", *safetyconfig.ESTIMATE_KEYS,
}


@dataclass(frozen=True)
class CheckOptions:
    """Everything ``migration-guard check`` needs, already merged and validated."""

    project_dir: Path
    paths: tuple[Path, ...] = ()
    full: bool = False
    last: int = DEFAULT_LAST
    shard: tuple[int, int] | None = None
    """``--shard I/N``: the full run's I-th of N parts (:mod:`guard.planning.shards`)."""
    settings: str | None = None
    """``--settings``; see :func:`guard.project.settings_module` for the full order."""
    config_settings: str | None = None
    db: str = "auto"
    formats: tuple[ReportTarget, ...] = (("text", None),)
    """Every report to write, each to its file or (at most one) to stdout."""
    github: bool = True
    """Under GitHub Actions: workflow annotations and the job's step summary (``--no-github``)."""
    verbose: bool = False
    timings: bool = False
    """``--timings``: say where the run's time went (also said with ``-v``)."""
    allow_irreversible: frozenset[str] = field(default_factory=frozenset)
    accept: tuple[tuple[str, str], ...] = ()
    """Migrations whose known failures are accepted: ("app.name", why)."""
    docker_image: str = "postgres:15"
    pg_bindir: str | None = None
    """``pg_bindir`` from the config: the only folder of PostgreSQL binaries ``local`` uses."""
    lock_timeout: str = "10s"
    statement_timeout: str = "2min"
    cache_size: int = 5
    """How many cached base states (template databases) to keep per server; 0 turns it off."""
    cache_dir: str = ""
    """``--cache-dir`` / ``cache_dir``: a folder keeping portable copies of the cached bases."""
    jobs: int = 1
    """``--jobs`` / ``jobs``: how many independent parts of the round trip run at once
    (default: the cores this process may use)."""
    databases: tuple[str, ...] = ()
    """``--database`` / ``databases``: the aliases to test; empty for every one Django would
    migrate."""
    rows: int = 3
    """``--rows`` / ``rows``: generated rows per model in the base; 0 for none."""
    data_seed: int = 0
    """``--data-seed`` / ``data_seed``: the same seed makes the same rows."""
    seed_function: str = ""
    """``seed = "package.module:function"``: the project's own rows, after the generated ones."""
    fixtures: tuple[Path, ...] = ()
    """``fixtures``: files loaded into the base through its historical models."""
    safety: bool = True
    """``--no-safety`` / ``safety = false``: no measuring of locks, rewrites and scans."""
    fail_on: frozenset[str] = field(default_factory=frozenset)
    """``--fail-on`` / ``fail_on``: kinds of finding that fail the run (``backward:KIND``)."""
    stats: str = ""
    """``--stats`` / ``stats``: production's sizes, for each finding's estimate ("": none)."""
    speed_factor: float = 1.0
    max_stats_age_days: float = 30.0
    max_blocking_seconds: float | None = None
    """With stats: a finding fails only where its estimate is over this (:mod:`guard.safety`)."""
    # The git side: how to find what changed (used before the Django side starts).
    mode: Mode = "auto"
    base: str | None = None
    configured_base: str | None = None
    semantic_diff: bool = True
    python: str | None = None
    # Filled in by the git side for the Django side.
    run_mode: str = ""
    """``branch`` or ``push`` when git chose the paths; empty otherwise."""
    notes: tuple[str, ...] = ()
    deleted: tuple[Path, ...] = ()
    shown_root: tuple[str, str] | None = None
    """(exported tree, repository): where a pushed commit was exported, and what to show."""
    clock: Exported | None = None
    """The git side's clock and phases, for the Django side in another process to go on with
    (:mod:`guard.timings`)."""

    @property
    def format(self) -> str:
        """The main report's format: the one on stdout, else the first."""
        return self._main[0]

    @property
    def output(self) -> Path | None:
        """The main report's file, None for stdout."""
        return Path(self._main[1]) if self._main[1] else None

    @property
    def _main(self) -> ReportTarget:
        return next((r for r in self.formats if r[1] is None), self.formats[0])


def find_project_dir(start: Path) -> Path:
    """The nearest folder from ``start`` upwards that holds ``manage.py``, else ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "manage.py").is_file():
            return folder
    return start


def find_pyproject(project_dir: Path) -> Path | None:
    for folder in (project_dir, *project_dir.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_config(project_dir: Path) -> dict[str, Any]:
    """The ``[tool.migration-guard]`` table of the project's pyproject.toml, checked."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib

    path = find_pyproject(project_dir)
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FatalError(f"Cannot read {path}: {exc}. Fix the file or remove it.") from exc
    table = data.get("tool", {}).get("migration-guard", {})
    if not isinstance(table, dict):
        raise FatalError(f"{path}: [tool.migration-guard] must be a table.")
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise FatalError(
            f"{path}: unknown key(s) in [tool.migration-guard]: {', '.join(unknown)}. "
            f"Known keys: {', '.join(sorted(KNOWN_KEYS))}."
        )
    for key, kind in (("settings", str), ("db", str), ("last", int), ("docker_image", str),
                      ("cache_size", int), ("jobs", int)):
        _expect(table, path, key, kind)
    if "jobs" in table and table["jobs"] < 1:
        raise FatalError(f"{path}: [tool.migration-guard] jobs must be 1 or more, not "
                         f"{table['jobs']}.")
    _expect(table, path, "cache_dir", str)
    for key in ("lock_timeout", "statement_timeout"):
        _expect(table, path, key, str)
        if key in table and not _DURATION.match(table[key]):
            raise FatalError(
                f"{path}: [tool.migration-guard] {key} = {table[key]!r} is not a PostgreSQL "
                'duration: write e.g. "500ms", "10s", "2min" (or "0" for none).'
            )
    for key in ("base", "python", "pg_bindir"):
        _expect(table, path, key, str)
    if "pg_bindir" in table and not table["pg_bindir"].strip():
        raise FatalError(
            f"{path}: [tool.migration-guard] pg_bindir is empty: give the bin folder of a "
            "PostgreSQL installation (e.g. /usr/lib/postgresql/15/bin), or remove the key to "
            "let migration-guard search."
        )
    if "semantic_diff" in table and not isinstance(table["semantic_diff"], bool):
        raise FatalError(f"{path}: [tool.migration-guard] semantic_diff must be true or false.")
    accepted = table.get("accept", {})
    if isinstance(accepted, list):
        accepted = dict.fromkeys(accepted, "")
    if not isinstance(accepted, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in accepted.items()
    ):
        raise FatalError(
            f'{path}: accept must be a list of "app_label.migration_name" strings, or a table '
            'of them with the reason: accept = {"app.0003_name" = "why it is accepted"}.'
        )
    table["accept"] = accepted
    databases = table.get("databases", [])
    if not isinstance(databases, list) or not all(isinstance(x, str) and x for x in databases):
        raise FatalError(
            f'{path}: databases must be a list of DATABASES aliases, e.g. databases = '
            '["default", "ledger"].'
        )
    rowsconfig.validate(table, path)
    safetyconfig.validate(table, path)
    allowed = table.get("allow_irreversible", [])
    if not isinstance(allowed, list) or not all(isinstance(x, str) for x in allowed):
        raise FatalError(
            f'{path}: allow_irreversible must be a list of "app_label.migration_name" strings.'
        )
    return dict(table)


def _config_python(value: str | None, pyproject: Path | None) -> str | None:
    """``python`` from the config: a command name, or a path relative to pyproject.toml."""
    if not value or pyproject is None or ("/" not in value and "\\" not in value):
        return value
    return str((pyproject.parent / Path(value).expanduser()).absolute())


def _config_folder(value: str | None, pyproject: Path | None) -> str | None:
    """A folder from the config, relative to pyproject.toml unless absolute; ``~`` expanded."""
    if not value or pyproject is None:
        return value
    return os.path.normpath((pyproject.parent / Path(value).expanduser()).absolute())


def _expect(table: Mapping[str, Any], path: Path, key: str, kind: type) -> None:
    if key in table and (not isinstance(table[key], kind) or isinstance(table[key], bool)):
        raise FatalError(
            f"{path}: [tool.migration-guard] {key} must be a {kind.__name__}, "
            f"not {table[key]!r}."
        )


_DURATION = re.compile(r"^\d+\s*(us|ms|s|min|h|d)?$")

_MANAGE_PY_SETTINGS = re.compile(
    r"""DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([A-Za-z_][\w.]*)['"]"""
)


def settings_from_manage_py(project_dir: Path) -> str | None:
    """The module that ``manage.py`` puts in ``DJANGO_SETTINGS_MODULE``, if it sets one."""
    manage = project_dir / "manage.py"
    try:
        text = manage.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = _MANAGE_PY_SETTINGS.search(text)
    return match.group(1) if match else None


def build_options(
    *,
    project_dir: Path | None,
    paths: Sequence[str],
    full: bool,
    last: int | None,
    settings: str | None,
    db: str | None,
    output_format: str | None = None,
    output: str | None = None,
    verbose: bool = False,
    timings: bool = False,
    formats: Sequence[str] | None = None,
    github: bool = True,
    mode: Mode = "auto",
    base: str | None = None,
    semantic_diff: bool | None = None,
    databases: Sequence[str] | None = None,
    rows: int | None = None,
    data_seed: int | None = None,
    safety: bool | None = None,
    fail_on: Sequence[str] | None = None,
    cache_dir: str | None = None,
    shard: str | None = None,
    jobs: int | None = None,
    stats: str | None = None,
    max_blocking_seconds: str | None = None,
    cwd: Path | None = None,
) -> CheckOptions:
    """Merge flags (which win) over the pyproject table into :class:`CheckOptions`."""
    here = (cwd or Path.cwd()).resolve()
    if project_dir is not None:
        root = project_dir.resolve()
        if not root.is_dir():
            raise FatalError(f"--project-dir {project_dir}: no such folder.")
    else:
        root = find_project_dir(here)
    config = read_config(root)
    spec = db or config.get("db") or "auto"
    if spec not in ("auto", "settings", "local", "docker"):
        parse_url(spec)  # a malformed URL is reported before any work
    last_n = last if last is not None else int(config.get("last", DEFAULT_LAST))
    if last_n < 1:
        raise FatalError(f"--last must be at least 1, not {last_n}.")
    sharded = shards.parse(shard) if shard is not None else None
    if sharded and not (full or mode == "full"):
        raise FatalError(f"--shard {shard} splits the full run: add --full (or --mode full).")
    if rows is not None and rows < 0:
        raise FatalError(f"--rows must be 0 (no generated rows) or more, not {rows}.")
    if jobs is not None and jobs < 1:
        raise FatalError(f"--jobs must be 1 (one part at a time) or more, not {jobs}.")
    return CheckOptions(
        project_dir=root,
        paths=tuple((here / p).resolve() for p in paths),
        full=full,
        last=last_n,
        shard=sharded,
        settings=settings,
        config_settings=config.get("settings"),
        db=spec,
        formats=parse_formats(
            formats or ([output_format] if output_format else []), output, here
        ),
        github=github,
        verbose=verbose,
        timings=timings,
        allow_irreversible=frozenset(config.get("allow_irreversible", [])),
        accept=tuple(sorted(config.get("accept", {}).items())),
        docker_image=config.get("docker_image", "postgres:15"),
        cache_size=max(0, int(config.get("cache_size", 5))),
        cache_dir=(os.path.normpath(here / Path(cache_dir).expanduser()) if cache_dir
                   else _config_folder(config.get("cache_dir"), find_pyproject(root)) or ""),
        databases=tuple(dict.fromkeys(databases or config.get("databases", []))),
        jobs=jobs or int(config.get("jobs", 0)) or _cores(),
        rows=rows if rows is not None else int(config.get("rows", 3)),
        data_seed=data_seed if data_seed is not None else int(config.get("data_seed", 0)),
        seed_function=config.get("seed", ""),
        fixtures=rowsconfig.fixture_paths(config.get("fixtures", []), find_pyproject(root), root),
        safety=safety if safety is not None else bool(config.get("safety", True)),
        fail_on=(safetyconfig.fail_on(fail_on, "--fail-on") if fail_on
                 else safetyconfig.fail_on(_listed(config.get("fail_on", [])), "fail_on")),
        **safetyconfig.estimating(config, stats, max_blocking_seconds, here,
                                  find_pyproject(root)),
        lock_timeout=config.get("lock_timeout", "10s"),
        statement_timeout=config.get("statement_timeout", "2min"),
        mode="full" if full else mode,
        base=base,
        configured_base=config.get("base"),
        semantic_diff=(
            semantic_diff if semantic_diff is not None else config.get("semantic_diff", True)
        ),
        python=_config_python(config.get("python"), find_pyproject(root)),
        pg_bindir=_config_folder(config.get("pg_bindir"), find_pyproject(root)),
    )


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _cores() -> int:
    """The cores this process may use, as ``manage.py test --parallel`` counts them."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
