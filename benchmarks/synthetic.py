"""A synthetic Django project for the benchmark: N migrations over ten apps, written directly.

The operations are generated as data from a seeded random generator while the state they lead
to is tracked here (models, fields, indexes per app); each app's ``models.py`` is then written
from that final state, so ``makemigrations --check`` finds nothing to do. Apps only point at
models of lower-numbered apps (or their own), and a migration depends on the latest migration of
every app it references, as ``makemigrations`` would write it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

APP_COUNT = 10
MIN_MIGRATIONS = APP_COUNT
NOUNS = (
    "Customer", "Order", "Invoice", "Product", "Shipment", "Payment", "Supplier", "Warehouse",
    "Ticket", "Account", "Contract", "Review", "Coupon", "Address", "Refund", "Carrier",
    "Batch", "Voucher", "Report", "Campaign", "Basket", "Parcel", "Tariff", "Region",
)
# Field names always end in "_<number>" and model names never contain "_", so a field can
# never clash with a reverse accessor or reverse query name.
PREFIXES = {"char": "title", "int": "quantity", "bool": "flag", "text": "notes",
            "decimal": "amount", "datetime": "stamp", "fk": "ref"}
UPDATABLE = ("char", "int", "bool")
# Kinds of migration and their weights; RunPython migrations are data migrations on their own.
KINDS = {"add_field": 24, "create_model": 10, "alter_field": 15, "add_index": 10,
         "rename_field": 10, "run_python": 15, "remove_field": 8, "add_fk": 8}

SETTINGS = '''\
"""Settings of the synthetic benchmark project; the database comes from BENCH_DB_* variables."""

import os

SECRET_KEY = "benchmark-only-not-secret"  # pragma: allowlist secret
DEBUG = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
{apps}]

DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_DB_NAME", "bench_main"),
        "HOST": os.environ.get("BENCH_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("BENCH_DB_PORT", "5432"),
        "USER": os.environ.get("BENCH_DB_USER", "postgres"),
        "PASSWORD": os.environ.get("BENCH_DB_PASSWORD", ""),
    }}
}}
'''

MANAGE = '''\
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''

ID_FIELD = ('("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, '
            'verbose_name="ID"))')


@dataclass(frozen=True)
class FieldSpec:
    """One model field, written the same way in a migration and in models.py."""

    kind: str
    max_length: int = 100
    big: bool = False
    blank: bool = False
    db_index: bool = False
    target: str = ""
    """For a foreign key: ``app_label.ModelName``."""

    def code(self, *, in_models: bool = False) -> str:
        if self.kind == "char":
            return f'models.CharField(default="", max_length={self.max_length})'
        if self.kind == "int":
            return f"models.{'BigIntegerField' if self.big else 'IntegerField'}(default=0)"
        if self.kind == "bool":
            return "models.BooleanField(default=False)"
        if self.kind == "text":
            return f'models.TextField({"blank=True, " if self.blank else ""}default="")'
        if self.kind == "decimal":
            return "models.DecimalField(decimal_places=2, default=0, max_digits=12)"
        if self.kind == "datetime":
            return f"models.DateTimeField({'db_index=True, ' if self.db_index else ''}null=True)"
        if self.kind == "fk":
            if in_models:
                return f'models.ForeignKey("{self.target}", null=True, on_delete=models.SET_NULL)'
            return ("models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, "
                    f'to="{self.target.lower()}")')
        raise AssertionError(self.kind)

    def altered(self) -> FieldSpec | None:
        """The field after a realistic AlterField, or None when this kind is not altered."""
        if self.kind == "char":
            return replace(self, max_length=self.max_length + 50)
        if self.kind == "int":
            return replace(self, big=not self.big)
        if self.kind == "text":
            return replace(self, blank=not self.blank)
        if self.kind == "datetime":
            return replace(self, db_index=not self.db_index)
        return None


@dataclass
class ModelSpec:
    name: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    indexes: list[tuple[str, str]] = field(default_factory=list)
    """(index name, field name), in the order they were added."""
    counter: int = 0

    def new_field_name(self, kind: str) -> str:
        self.counter += 1
        return f"{PREFIXES[kind]}_{self.counter}"

    def indexed(self) -> set[str]:
        return {name for _, name in self.indexes}

    def targets(self) -> set[str]:
        return {f.target for f in self.fields.values() if f.kind == "fk"}


@dataclass
class Migration:
    app: str
    name: str
    dependencies: set[tuple[str, str]] = field(default_factory=set)
    operations: list[str] = field(default_factory=list)
    functions: str = ""

    def render(self) -> str:
        body = "\n".join(self.operations)
        head = []
        if "django.db.models.deletion" in body:
            head.append("import django.db.models.deletion")
        head.append("from django.db import migrations" + (", models" if "models." in
                                                           body.replace("db.models.", "") else ""))
        deps = "".join(f'        ("{app}", "{name}"),\n' for app, name in sorted(self.dependencies))
        initial = "    initial = True\n\n" if self.name.startswith("0001_") else ""
        functions = f"\n\n\n{self.functions.strip()}" if self.functions else ""
        return (
            "\n".join(head) + functions + "\n\n\nclass Migration(migrations.Migration):\n"
            + initial + f"    dependencies = [\n{deps}    ]\n\n"
            + f"    operations = [\n{body}\n    ]\n"
        )


@dataclass
class AppSpec:
    label: str
    models: dict[str, ModelSpec] = field(default_factory=dict)
    migrations: list[Migration] = field(default_factory=list)

    @property
    def index(self) -> int:
        return int(self.label.removeprefix("app"))

    def latest(self) -> str:
        return self.migrations[-1].name

    def render_models(self) -> str:
        parts = ["from django.db import models\n"]
        for model in self.models.values():
            lines = [f"\n\nclass {model.name}(models.Model):"]
            lines += [f"    {name} = {spec.code(in_models=True)}"
                      for name, spec in model.fields.items()]
            if model.indexes:
                lines += ["", "    class Meta:", "        indexes = ["]
                lines += [f'            models.Index(fields=["{f}"], name="{n}"),'
                          for n, f in model.indexes]
                lines.append("        ]")
            parts.append("\n".join(lines) + "\n")
        return "".join(parts)


@dataclass(frozen=True)
class Feature:
    """The feature branch's one migration."""

    app: str
    name: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"


class Generator:
    """Emits migrations as data while tracking the state they lead to."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.apps = [AppSpec(f"app{i}") for i in range(APP_COUNT)]
        self.model_count = 0
        self.index_count = 0

    def generate(self, count: int) -> list[AppSpec]:
        if count < MIN_MIGRATIONS:
            raise ValueError(f"at least {MIN_MIGRATIONS} migrations (one initial per app)")
        for app in self.apps:
            self._initial(app)
        kinds, weights = zip(*KINDS.items(), strict=True)
        for _ in range(count - APP_COUNT):
            app = self.rng.choice(self.apps)
            kind = self.rng.choices(kinds, weights)[0]
            migration = self._begin(app)
            if not getattr(self, f"_{kind}")(app, migration):
                self._add_field(app, migration)
            self._finish(app, migration, kind)
        return self.apps

    # -- migrations ---------------------------------------------------------------------------

    def _begin(self, app: AppSpec) -> Migration:
        migration = Migration(app.label, f"{len(app.migrations) + 1:04d}")
        if app.migrations:
            migration.dependencies.add((app.label, app.latest()))
        return migration

    def _finish(self, app: AppSpec, migration: Migration, slug: str) -> None:
        migration.name = f"{migration.name}_{slug}"
        app.migrations.append(migration)

    def _initial(self, app: AppSpec) -> None:
        migration = self._begin(app)
        for _ in range(2):
            self._create_model(app, migration)
        self._finish(app, migration, "initial")

    def _reference(self, app: AppSpec, migration: Migration) -> str:
        """A model to point a foreign key at: one of a lower app, else of this one."""
        lower = [a for a in self.apps[: app.index] if a.models]
        if lower and (not app.models or self.rng.random() < 0.7):
            other = self.rng.choice(lower)
            migration.dependencies.add((other.label, other.latest()))
            return f"{other.label}.{self.rng.choice(list(other.models.values())).name}"
        return f"{app.label}.{self.rng.choice(list(app.models.values())).name}"

    def _new_field(self, app: AppSpec, migration: Migration, kind: str) -> FieldSpec:
        if kind == "fk":
            return FieldSpec("fk", target=self._reference(app, migration))
        return FieldSpec(kind)

    # -- operations: each returns False when it cannot apply (then a field is added) -----------

    def _create_model(self, app: AppSpec, migration: Migration) -> bool:
        self.model_count += 1
        model = ModelSpec(f"{NOUNS[self.model_count % len(NOUNS)]}{self.model_count}")
        kinds = ["char", *self.rng.sample(["int", "bool", "text", "decimal", "datetime"], 2)]
        if app.index > 0 or app.models:
            kinds.append("fk")
        for kind in kinds:
            model.fields[model.new_field_name(kind)] = self._new_field(app, migration, kind)
        app.models[model.name] = model
        fields = "".join(f'                ("{n}", {f.code()}),\n' for n, f in model.fields.items())
        migration.operations.append(
            f'        migrations.CreateModel(\n            name="{model.name}",\n'
            f"            fields=[\n                {ID_FIELD},\n{fields}            ],\n        ),"
        )
        return True

    def _add_field(self, app: AppSpec, migration: Migration, kind: str | None = None) -> bool:
        for _ in range(self.rng.randint(1, 2) if kind is None else 1):
            model = self.rng.choice(list(app.models.values()))
            chosen = kind or self.rng.choice(list(PREFIXES))
            spec = self._new_field(app, migration, chosen)
            if spec.kind == "fk" and spec.target in model.targets():
                spec = FieldSpec("int")  # one foreign key per target and model: no clash
            name = model.new_field_name(spec.kind)
            model.fields[name] = spec
            migration.operations.append(
                f'        migrations.AddField(\n            model_name="{model.name.lower()}",\n'
                f'            name="{name}",\n            field={spec.code()},\n        ),'
            )
        return True

    def _add_fk(self, app: AppSpec, migration: Migration) -> bool:
        return self._add_field(app, migration, "fk")

    def _pick(self, app: AppSpec, usable: set[str] | tuple[str, ...],
              *, unindexed: bool = False) -> tuple[ModelSpec, str] | None:
        candidates = [
            (model, name)
            for model in app.models.values()
            for name, spec in model.fields.items()
            if spec.kind in usable and not (unindexed and name in model.indexed())
        ]
        return self.rng.choice(candidates) if candidates else None

    def _alter_field(self, app: AppSpec, migration: Migration) -> bool:
        picked = self._pick(app, ("char", "int", "text", "datetime"))
        if picked is None:
            return False
        model, name = picked
        altered = model.fields[name].altered()
        assert altered is not None
        model.fields[name] = altered
        migration.operations.append(
            f'        migrations.AlterField(\n            model_name="{model.name.lower()}",\n'
            f'            name="{name}",\n            field={altered.code()},\n        ),'
        )
        return True

    def _add_index(self, app: AppSpec, migration: Migration) -> bool:
        picked = self._pick(app, ("char", "int", "bool", "decimal"), unindexed=True)
        if picked is None:
            return False
        model, name = picked
        self.index_count += 1
        index = f"{app.label}_{self.index_count:04d}_idx"
        model.indexes.append((index, name))
        migration.operations.append(
            f'        migrations.AddIndex(\n            model_name="{model.name.lower()}",\n'
            f'            index=models.Index(fields=["{name}"], name="{index}"),\n        ),'
        )
        return True

    def _rename_field(self, app: AppSpec, migration: Migration) -> bool:
        picked = self._pick(app, tuple(PREFIXES), unindexed=True)
        if picked is None:
            return False
        model, old = picked
        spec = model.fields.pop(old)
        new = model.new_field_name(spec.kind)
        model.fields[new] = spec
        migration.operations.append(
            f'        migrations.RenameField(\n            model_name="{model.name.lower()}",\n'
            f'            old_name="{old}",\n            new_name="{new}",\n        ),'
        )
        return True

    def _remove_field(self, app: AppSpec, migration: Migration) -> bool:
        candidates = [
            (model, name)
            for model in app.models.values()
            for name in model.fields
            if name not in model.indexed()
            # Keep something for data migrations to update.
            and any(s.kind in UPDATABLE for n, s in model.fields.items() if n != name)
        ]
        if not candidates:
            return False
        model, name = self.rng.choice(candidates)
        del model.fields[name]
        migration.operations.append(
            f'        migrations.RemoveField(\n            model_name="{model.name.lower()}",\n'
            f'            name="{name}",\n        ),'
        )
        return True

    def _run_python(self, app: AppSpec, migration: Migration) -> bool:
        picked = self._pick(app, UPDATABLE)
        if picked is None:
            return False
        model, name = picked
        before, after = {"char": ('""', '"n/a"'), "int": ("0", "1"),
                         "bool": ("False", "True")}[model.fields[name].kind]
        migration.functions = "\n\n".join(
            f"def {function}(apps, schema_editor):\n"
            f'    model = apps.get_model("{app.label}", "{model.name}")\n'
            f"    model.objects.filter({name}={old}).update({name}={new})\n"
            for function, old, new in (("forwards", before, after),
                                       ("backwards", after, before))
        )
        migration.operations.append("        migrations.RunPython(forwards, backwards),")
        return True


def write_project(root: Path, apps: list[AppSpec]) -> None:
    """The project folder: manage.py, benchproject/settings.py, each app with its migrations."""
    (root / "benchproject").mkdir(parents=True)
    (root / "manage.py").write_text(MANAGE)
    (root / "benchproject" / "__init__.py").write_text("")
    listed = "".join(f'    "{app.label}",\n' for app in apps)
    (root / "benchproject" / "settings.py").write_text(SETTINGS.format(apps=listed))
    (root / ".gitignore").write_text("__pycache__/\n")
    for app in apps:
        folder = root / app.label / "migrations"
        folder.mkdir(parents=True)
        (root / app.label / "__init__.py").write_text("")
        (folder / "__init__.py").write_text("")
        write_models(root, app)
        for migration in app.migrations:
            (folder / f"{migration.name}.py").write_text(migration.render())


def write_models(root: Path, app: AppSpec) -> None:
    (root / app.label / "models.py").write_text(app.render_models())


def add_feature(root: Path, app: AppSpec) -> Feature:
    """The feature branch's change: a boolean field on the app's first model, its migration."""
    model = next(iter(app.models.values()))
    name = model.new_field_name("bool")
    model.fields[name] = FieldSpec("bool")
    migration = Migration(app.label, f"{len(app.migrations) + 1:04d}_feature_{name}",
                          {(app.label, app.latest())})
    migration.operations.append(
        f'        migrations.AddField(\n            model_name="{model.name.lower()}",\n'
        f'            name="{name}",\n            field={model.fields[name].code()},\n        ),'
    )
    app.migrations.append(migration)
    path = root / app.label / "migrations" / f"{migration.name}.py"
    path.write_text(migration.render())
    write_models(root, app)
    return Feature(app.label, migration.name, path)


def rollback_targets(apps: list[AppSpec], last: int) -> Iterator[tuple[str, str]]:
    """Per app, what ``migrate APP TARGET`` rolls its last ``last`` migrations back to."""
    for app in apps:
        names = [m.name for m in app.migrations]
        yield app.label, names[-last - 1] if len(names) > last else "zero"
