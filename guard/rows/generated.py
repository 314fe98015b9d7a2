"""Generated rows in every table of the base, through its historical models.

The models are those of the base state (``state.apps``), never the project's current ones: the
columns are the ones the database has at that point of the history. Each concrete, managed,
not swapped-out model the alias migrates gets ``count`` rows (:mod:`guard.rows.values`),
models before the models they point at through a NOT NULL foreign key; a nullable foreign key
whose target comes later (a self-reference, a cycle) is filled by an UPDATE once every table
has its rows. Many-to-many relations are rows of their through models like any other.

A model whose rows cannot be made is skipped with a note naming it, never a crash: first the
rows go in at once; if the database refuses them, one by one, a refused row again with
ordinary values; a model none of whose rows goes in is skipped with what the database said.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from guard.database.server import one_line
from guard.rows import fieldrules, values

if TYPE_CHECKING:
    from django.apps.registry import Apps
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Field, Model

    AnyField = Field[Any, Any]

POOL = 50
"""How many rows of a target table a foreign key chooses from."""


@dataclass
class Made:
    """What the generator did on one database."""

    rows: int = 0
    tables: int = 0
    skipped: list[str] = field(default_factory=list)
    """``app.Model: why`` for each model that got no rows."""


def generate(apps: Apps, connection: BaseDatabaseWrapper, *, count: int, seed: int) -> Made:
    """Insert ``count`` rows per model of ``apps`` on ``connection``; what was made."""
    from django.db import router, transaction

    made = Made()
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
    models = [
        model for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy and not model._meta.swapped
        and model._meta.db_table in tables
        and router.allow_migrate_model(connection.alias, model)
    ]
    ordered, stuck = _order(models)
    for model, why in stuck:
        made.skipped.append(f"{_name(model)}: {why}")
    done: set[str] = set()
    """The models that have rows, by label: a historical model's relations may point at another
    rendering of the same model, so classes are not compared."""
    later: list[tuple[type[Model], list[Any], list[AnyField]]] = []
    pools: dict[tuple[str, str], list[Any]] = {}
    """The values of each (table, column) foreign keys point at: a target's rows are made
    before any row that points at it, and change only when a child model's rows are made."""
    with transaction.atomic(using=connection.alias):
        for model in ordered:
            missing = [t for t in _required_targets(model) if t not in done and t != _key(model)]
            if missing:
                made.skipped.append(f"{_name(model)}: it needs rows of {missing[0]}, which "
                                    "has none")
                continue
            try:
                # A savepoint per model: whatever goes wrong with one leaves the others alone.
                try:
                    with transaction.atomic(using=connection.alias):
                        maker = _Maker(model, connection, seed=seed, done=done, pools=pools)
                        objects = maker.insert(count)
                except (values.CannotMake, _Refused):
                    raise
                except Exception as exc:  # all at once refused: row by row, those it takes
                    with transaction.atomic(using=connection.alias):
                        maker = _Maker(model, connection, seed=seed, done=done, pools=pools)
                        objects = maker.insert(count, refused=exc)
            except (values.CannotMake, _Refused) as exc:
                made.skipped.append(f"{_name(model)}: {exc}")
                continue
            except Exception as exc:  # a custom field's own code refusing a value, and such
                made.skipped.append(f"{_name(model)}: {type(exc).__name__}: {one_line(exc)}")
                continue
            if not objects:
                continue
            parents = {parent._meta.db_table for parent in model._meta.get_parent_list()}
            for target in [t for t in pools if t[0] in parents]:  # they gained rows
                del pools[target]
            done.add(_key(model))
            made.rows += len(objects)
            made.tables += 1
            if maker.deferred:
                later.append((model, objects, maker.deferred))
        for model, objects, deferred in later:
            _fill_deferred(model, objects, deferred, connection, seed, done)
    return made


class _Refused(Exception):
    """The database took none of a model's rows."""


class _Maker:
    """The rows of one model."""

    def __init__(self, model: type[Model], connection: BaseDatabaseWrapper, *, seed: int,
                 done: set[str], pools: dict[tuple[str, str], list[Any]] | None = None
                 ) -> None:
        self.model = model
        self.connection = connection
        self.seed = seed
        self.unique = _unique_columns(model)
        self.rules = fieldrules.rules(model)
        self.inherited = bool(model._meta.parents)
        """Multi-table inheritance: each row is saved on its own, its parents' rows first."""
        self.fields: list[AnyField] = []
        self.deferred: list[AnyField] = []
        self.pools: dict[str, list[Any]] = {}
        for item in model._meta.concrete_fields:
            if getattr(item, "generated", False) or _is_auto(item):
                continue
            if getattr(item.remote_field, "parent_link", False):
                continue  # the link to a parent's row: save() makes that row
            if item.is_relation:
                target = item.related_model
                if _key(target) == _key(model) or _key(target) not in done:
                    if not item.null:
                        continue  # a NOT NULL self-reference: _required_targets stops it
                    self.deferred.append(item)
                    continue
                self.pools[item.name] = _pooled(item, connection, pools)
            self.fields.append(item)

    def rows_possible(self, count: int) -> int:
        for item in self.fields:
            if item.name not in self.unique:
                continue
            if item.name in self.pools:
                count = min(count, len(self.pools[item.name]))
                if not count:
                    raise _Refused(f"every row of {_key(item.related_model)} already has one "
                                   f"(its {item.name} is unique)")
            limit = values.capacity(item)
            if limit is not None:
                count = min(count, limit)
            allowed = self.rules.get(item.name).allowed
            if allowed is not None:
                count = min(count, len(allowed))
        return count

    def build(self, row: int, *, plain: bool = False) -> Model:
        data: dict[str, Any] = {}
        for item in self.fields:
            unique = item.name in self.unique
            if item.name in self.pools:
                data[item.attname] = _choose(self.pools[item.name], row, item, unique=unique,
                                             plain=plain)
            else:
                data[item.attname] = values.value(
                    item, row, unique=unique, seed=self.seed, model=_name(self.model),
                    connection=self.connection, plain=plain, rule=self.rules.get(item.name))
        return self.model(**data)

    def insert(self, count: int, *, refused: Exception | None = None) -> list[Model]:
        """All rows in one statement (what it raises is the caller's, whose savepoint then
        rolls it back), or, once that was ``refused``, row by row, those the database takes."""
        from django.db import transaction

        count = self.rows_possible(count)
        if count <= 0:
            return []
        if refused is None and not self.inherited:  # bulk_create cannot fill a parent's table
            manager = self.model._base_manager.using(self.connection.alias)
            return list(manager.bulk_create([self.build(row) for row in range(count)]))
        first_error = refused
        inserted: list[Model] = []
        for row in range(count):
            for plain in (False, True):
                try:
                    with transaction.atomic(using=self.connection.alias):
                        inserted.append(self._save(self.build(row, plain=plain)))
                    break
                except Exception as exc:
                    first_error = exc
        if not inserted:
            raise _Refused(f"the database took none of its rows: {one_line(first_error)}")
        return inserted

    def _save(self, obj: Model) -> Model:
        if self.inherited:
            obj.save(force_insert=True, using=self.connection.alias)
            return obj
        manager = self.model._base_manager.using(self.connection.alias)
        return manager.bulk_create([obj])[0]


def _fill_deferred(model: type[Model], objects: Sequence[Model], deferred: Sequence[AnyField],
                   connection: BaseDatabaseWrapper, seed: int, done: set[str]) -> None:
    """Point the nullable foreign keys that could not be set at insert time."""
    from django.db import DatabaseError, transaction

    unique = _unique_columns(model)
    manager = model._base_manager.using(connection.alias)
    for item in deferred:
        if _key(item.related_model) not in done:
            continue
        pool = _pool(item, connection)
        for row, obj in enumerate(objects):
            if row == 1 or obj.pk is None or not pool:
                continue  # row 1 keeps its NULL
            if item.name in unique and row >= len(pool):
                break
            chosen = _choose(pool, row, item, unique=item.name in unique, plain=False)
            try:
                with transaction.atomic(using=connection.alias):
                    manager.filter(pk=obj.pk).update(**{item.attname: chosen})
            except DatabaseError:
                continue


def _choose(pool: Sequence[Any], row: int, item: AnyField, *, unique: bool, plain: bool) -> Any:
    if row == 1 and item.null and not plain:
        return None
    if unique:
        return pool[row]
    return pool[0] if row in (0, 2) and not plain else pool[row % len(pool)]


def _pooled(item: AnyField, connection: BaseDatabaseWrapper,
            pools: dict[tuple[str, str], list[Any]] | None) -> list[Any]:
    """:func:`_pool`, read once per target column unless the key is unique (its free values
    depend on the rows of its own table)."""
    if item.unique or pools is None:
        return _pool(item, connection, free=item.unique)
    target = (item.related_model._meta.db_table,  # type: ignore[union-attr]
              item.target_field.attname)  # type: ignore[attr-defined]
    if target not in pools:
        pools[target] = _pool(item, connection)
    return pools[target]


def _pool(item: AnyField, connection: BaseDatabaseWrapper, *, free: bool = False) -> list[Any]:
    """Values a foreign key may take: the target's rows (also those of data migrations); with
    ``free``, for a unique one (a one-to-one), those no row of its table points at yet (a
    parent's rows may have taken them, under multi-table inheritance)."""
    target = item.related_model
    column = item.target_field.attname  # type: ignore[attr-defined]
    query = target._base_manager.using(connection.alias).order_by("pk")  # type: ignore[union-attr]
    if free:
        owner = item.model._base_manager.using(connection.alias)
        query = query.exclude(**{f"{column}__in": owner.exclude(**{item.attname: None})
                                 .values_list(item.attname, flat=True)})
    return list(query.values_list(column, flat=True)[:POOL])


def _unique_columns(model: type[Model]) -> set[str]:
    """Fields whose values must differ between rows: unique ones, and one field of each
    composite unique set (``unique_together``, ``UniqueConstraint``) no single field makes
    unique already."""
    from django.db.models import UniqueConstraint

    opts = model._meta
    unique = {f.name for f in opts.concrete_fields if f.unique or f.primary_key}
    sets: list[Sequence[str]] = [tuple(s) for s in opts.unique_together]
    sets += [c.fields for c in opts.constraints if isinstance(c, UniqueConstraint) and c.fields]
    for names in sets:
        members = [opts.get_field(n) for n in names]
        if any(m.name in unique for m in members):
            continue
        plain = [m for m in members if not m.is_relation]
        unique.add((plain or members)[-1].name)
    return unique


def _required_targets(model: type[Model]) -> list[str]:
    """The labels of the models that ``model``'s NOT NULL foreign keys point at."""
    return [_key(f.related_model) for f in model._meta.concrete_fields
            if f.is_relation and not f.null and f.related_model is not None]


def _key(model: Any) -> str:
    """A model's label; a proxy's is its concrete model's (a foreign key to a proxy points at
    the concrete model's rows)."""
    return str(model._meta.concrete_model._meta.label_lower)


def _order(models: Iterable[type[Model]]) -> tuple[list[type[Model]], list[tuple[Any, str]]]:
    """Models after the models their NOT NULL foreign keys point at; the rest, with why."""
    pending = list(models)
    known = {_key(m) for m in pending}
    ordered: list[type[Model]] = []
    placed: set[str] = set()
    while pending:
        ready = [m for m in pending
                 if all(t in placed or t not in known for t in _required_targets(m)
                        if t != _key(m))
                 and not _self_required(m)]
        if not ready:
            break
        for model in ready:
            ordered.append(model)
            placed.add(_key(model))
        pending = [m for m in pending if _key(m) not in placed]
    stuck = []
    for model in pending:
        if _self_required(model):
            stuck.append((model, "a NOT NULL foreign key to itself"))
        else:
            stuck.append((model, "its NOT NULL foreign keys form a cycle"))
    return ordered, stuck


def _self_required(model: type[Model]) -> bool:
    return _key(model) in _required_targets(model)


def _is_auto(item: AnyField) -> bool:
    return values.kind(item) in ("AutoField", "BigAutoField", "SmallAutoField")


def _name(model: Any) -> str:
    return f"{model._meta.app_label}.{model._meta.object_name}"
