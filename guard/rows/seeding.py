"""Rows in the base before the selection goes forward: generated ones, then the project's own.

The project's own rows come from ``seed = "package.module:function"`` (called as
``function(apps, schema_editor)`` with the base's historical models, the ``RunPython``
contract) and ``fixtures = [...]`` (loaded through the historical models, like ``loaddata``
but at that point of the history), after the generated rows. Everything here runs while the
base is built, so a cached template holds the rows: :func:`key_part` is what of it the cache
key covers.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guard.database.server import one_line
from guard.errors import FatalError

if TYPE_CHECKING:
    from django.apps.registry import Apps
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.state import ProjectState

DEFAULT_ROWS = 3
DEFAULT_SEED = 0


@dataclass(frozen=True)
class RowSettings:
    """``--rows``/``rows``, ``--data-seed``/``data_seed``, ``seed`` and ``fixtures``."""

    count: int = DEFAULT_ROWS
    data_seed: int = DEFAULT_SEED
    function: str = ""
    """``package.module:function``, or empty."""
    fixtures: tuple[Path, ...] = ()

    @property
    def active(self) -> bool:
        return self.count > 0 or bool(self.function) or bool(self.fixtures)

    def describe(self) -> str:
        parts = [f"{self.count} per model, seed {self.data_seed}" if self.count else "none made"]
        if self.function:
            parts.append(f"seed function {self.function}")
        if self.fixtures:
            parts.append(f"{len(self.fixtures)} fixture(s)")
        return "; ".join(parts)


@dataclass
class Seeded:
    """What went into one base."""

    rows: int = 0
    tables: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "tables": self.tables, "seconds": round(self.seconds, 3),
                "notes": self.notes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seeded:
        return cls(rows=int(data.get("rows", 0)), tables=int(data.get("tables", 0)),
                   seconds=float(data.get("seconds", 0.0)),
                   notes=[str(n) for n in data.get("notes", [])])


def key_part(settings: RowSettings) -> dict[str, Any]:
    """What of the rows the base's cache key covers: the settings, the generator's code, the
    seed function's module and the fixtures' content."""
    if not settings.active:
        return {}
    code = hashlib.sha256()
    for module in ("fieldrules", "generated", "values"):  # imported only to make rows
        code.update(Path(__file__).with_name(f"{module}.py").read_bytes())
    part: dict[str, Any] = {"count": settings.count, "data_seed": settings.data_seed,
                            "generator": code.hexdigest()[:16]}
    if settings.function:
        part["function"] = settings.function
        part["function_source"] = _digest(_module_file(settings.function))
    part["fixtures"] = {str(p): _digest(p) for p in settings.fixtures}
    return part


def seed(state: ProjectState, connection: BaseDatabaseWrapper, settings: RowSettings) -> Seeded:
    """Fill the base in ``connection``'s database (its migrations applied, ``state`` after
    them)."""
    started = time.perf_counter()
    seeded = Seeded()
    apps = state.apps
    if settings.count > 0:
        from guard.rows import generated

        made = generated.generate(apps, connection, count=settings.count, seed=settings.data_seed)
        seeded.rows, seeded.tables = made.rows, made.tables
        seeded.notes.extend(f"no rows for {why}" for why in made.skipped)
    if settings.function:
        _call(settings.function, apps, connection)
    for fixture in settings.fixtures:
        count = _load(fixture, apps, connection)
        seeded.notes.append(f"fixture {fixture.name}: {count} object(s)")
    seeded.seconds = time.perf_counter() - started
    return seeded


def _module_file(spec: str) -> Path | None:
    module = spec.partition(":")[0]
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    return Path(found.origin) if found and found.origin else None


def _digest(path: Path | None) -> str:
    if path is None:
        return "missing"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


def _call(spec: str, apps: Apps, connection: BaseDatabaseWrapper) -> None:
    module_name, _, name = spec.partition(":")
    where = f'[tool.migration-guard] seed = "{spec}"'
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, name)
    except (ImportError, AttributeError) as exc:
        raise FatalError(
            f"{where}: cannot import it ({type(exc).__name__}: {one_line(exc)}). Give "
            '"package.module:function", importable from the project folder.'
        ) from exc
    try:
        with connection.schema_editor(atomic=True) as editor:
            function(apps, editor)
    except Exception as exc:
        raise FatalError(
            f"{where} failed on the base on {connection.alias}: {type(exc).__name__}: "
            f"{one_line(exc)}. It is called as function(apps, schema_editor) with the historical "
            "models of the base, like a RunPython: use apps.get_model(), not the project's "
            "models."
        ) from exc


def _load(fixture: Path, apps: Apps, connection: BaseDatabaseWrapper) -> int:
    """Load one fixture through the historical models; how many objects it held."""
    from django.core import serializers
    from django.core.management.color import no_style
    from django.db import router, transaction

    where = f"[tool.migration-guard] fixtures: {fixture}"
    fmt = fixture.suffix.lstrip(".")
    if fmt not in serializers.get_public_serializer_formats():
        raise FatalError(f"{where}: unknown fixture format {fmt!r}; give a .json, .xml or "
                         "(with PyYAML) .yaml file.")
    loaded = 0
    models = set()
    try:
        data = fixture.read_text(encoding="utf-8")
        with _historical(apps), transaction.atomic(using=connection.alias):
            deferred = []
            for item in serializers.deserialize(fmt, data, using=connection.alias,
                                                handle_forward_references=True):
                model = type(item.object)
                if not router.allow_migrate_model(connection.alias, model):
                    continue
                item.save(using=connection.alias)
                models.add(model)
                loaded += 1
                if item.deferred_fields:
                    deferred.append(item)
            for item in deferred:
                item.save_deferred_fields(using=connection.alias)
            reset = connection.ops.sequence_reset_sql(no_style(), list(models))
            if reset:
                with connection.cursor() as cursor:
                    for statement in reset:
                        cursor.execute(statement)
    except FatalError:
        raise
    except Exception as exc:
        raise FatalError(
            f"{where} did not load on the base on {connection.alias}: {type(exc).__name__}: "
            f"{one_line(exc)}. A fixture is loaded through the models as the base has them (the "
            "migrations outside the selection applied): its fields must exist there."
        ) from exc
    return loaded


@contextmanager
def _historical(apps: Apps) -> Iterator[None]:
    """Django's deserializers look models up in the global registry: point them at ``apps``."""
    import django.core.serializers.python as python_module

    modules: list[Any] = [python_module]
    try:
        import django.core.serializers.xml_serializer as xml_module

        modules.append(xml_module)
    except ImportError:  # pragma: no cover - part of Django
        pass
    saved = [(m, m.__dict__.get("apps")) for m in modules if "apps" in m.__dict__]
    for module, _ in saved:
        module.apps = apps
    try:
        yield
    finally:
        for module, original in saved:
            module.apps = original
