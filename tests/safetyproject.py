"""The ground truth of the safety findings: one app per operation, each with a table of
``ROWS`` rows made by ``generate_series`` in its first migration, and the operation in its second.

Every case states the kinds of finding its second migration must have going forward: an empty
set for the operations that are safe on a live table (no claim may be made), the right kinds for
those that are not (none may be missed). All cases run in one check, each app's ``0002`` selected
by its path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import django

from tests.guardrun import write

ROWS = 20_000

ROW_FIELDS = {
    "code": "models.CharField(max_length=20)",
    "number": "models.IntegerField()",
    "note": "models.TextField(null=True)",
}
TARGET = '''
        migrations.CreateModel(
            name="Target",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True,
                                               serialize=False, verbose_name="ID")),
                    ("size", models.IntegerField())],
        ),
        migrations.RunSQL(
            "INSERT INTO {app}_target (size) SELECT g FROM generate_series(1, {rows}) g",
            migrations.RunSQL.noop,
        ),'''

INITIAL = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [{target}
        migrations.CreateModel(
            name="Row",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True,
                                               serialize=False, verbose_name="ID")),
{fields}],
        ),
        migrations.RunSQL(
            "INSERT INTO {app}_row (code, number, note) "
            "SELECT 'c' || g, g, 'note ' || g FROM generate_series(1, {rows}) g",
            migrations.RunSQL.noop,
        ),
    ]
'''

CHANGE = '''
import django.db.models.deletion
import django.db.models.functions
from django.contrib.postgres import functions as pg_functions, operations as pg_operations
from django.db import migrations, models


def fill(apps, schema_editor):
    apps.get_model("{app}", "Row").objects.update(flag=1)


class Migration(migrations.Migration):
    atomic = {atomic}
    dependencies = [("{app}", "0001_initial")]

    operations = [
{operations}
    ]
'''


@dataclass(frozen=True)
class Case:
    operations: str
    expected: frozenset[str]
    """The kinds of finding going forward: exactly these."""
    fields: dict[str, str | None] = field(default_factory=dict)
    """``Row``'s fields after the change (None: removed)."""
    extra_models: str = ""
    target: bool = False
    """The app also has ``Target`` (``ROWS`` rows) for a foreign key to point at."""
    atomic: bool = True
    needs: tuple[int, int] = (4, 2)
    """The Django version it needs."""
    backward: frozenset[str] | None = None
    """The kinds going backward, where the case says (None: not asserted)."""
    tables: dict[str, set[str]] = field(default_factory=dict)
    """For some kinds, the tables they must name (the app's prefix left out)."""


NONE: frozenset[str] = frozenset()

CASES: dict[str, Case] = {
    # No claim: safe on a live table.
    "varchar_grow": Case(
        '        migrations.AlterField("row", "code", models.CharField(max_length=40)),',
        NONE, {"code": "models.CharField(max_length=40)"},
        backward=frozenset({"rewrite"}),  # its reverse is a shrink
    ),
    "varchar_to_text": Case(
        '        migrations.AlterField("row", "code", models.TextField()),',
        NONE, {"code": "models.TextField()"},
    ),
    "add_default": Case(
        '        migrations.AddField("row", "flag", models.IntegerField(default=0)),',
        NONE, {"flag": "models.IntegerField(default=0)"},
    ),
    "add_default_null": Case(
        '        migrations.AddField("row", "flag", models.IntegerField(default=0, null=True)),',
        NONE, {"flag": "models.IntegerField(default=0, null=True)"},
    ),
    "add_db_default_now": Case(
        '        migrations.AddField("row", "stamp", models.DateTimeField('
        "db_default=django.db.models.functions.Now())),",
        NONE, {"stamp": "models.DateTimeField(db_default=models.functions.Now())"},
        needs=(5, 0),
    ),
    "drop_not_null": Case(
        '        migrations.AlterField("row", "code", models.CharField(max_length=20, '
        "null=True)),",
        NONE, {"code": "models.CharField(max_length=20, null=True)"},
    ),
    "add_index_concurrently": Case(
        '        pg_operations.AddIndexConcurrently("row", models.Index(fields=["code"], '
        'name="{index}")),',
        NONE, extra_models='        indexes = [models.Index(fields=["code"], name="{index}")]',
        atomic=False,
    ),
    "add_constraint_not_valid": Case(
        '        pg_operations.AddConstraintNotValid("row", models.CheckConstraint('
        '{check}=models.Q(number__gte=0), name="{app}_number_gte_0")),',
        NONE,
        extra_models='        constraints = [models.CheckConstraint('
                     '{check}=models.Q(number__gte=0), name="{app}_number_gte_0")]',
    ),
    "rename": Case(
        '        migrations.RenameField("row", "code", "label"),',
        NONE, {"code": None, "label": "models.CharField(max_length=20)"},
    ),
    "new_table": Case(
        '        migrations.CreateModel(name="Child", fields=['
        '("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, '
        'verbose_name="ID")), '
        '("name", models.CharField(max_length=20, db_index=True)), '
        '("row", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, '
        'to="{app}.row"))]),',
        NONE,
        extra_models="CHILD",
    ),
    # The right kind: each would stop or slow a live site.
    "int_to_bigint": Case(
        '        migrations.AlterField("row", "number", models.BigIntegerField()),',
        frozenset({"rewrite"}), {"number": "models.BigIntegerField()"},
    ),
    "varchar_shrink": Case(
        '        migrations.AlterField("row", "code", models.CharField(max_length=10)),',
        frozenset({"rewrite"}), {"code": "models.CharField(max_length=10)"},
    ),
    "text_to_varchar": Case(
        '        migrations.AlterField("row", "note", models.CharField(max_length=50, '
        "null=True)),",
        frozenset({"rewrite"}), {"note": "models.CharField(max_length=50, null=True)"},
    ),
    "volatile_db_default": Case(
        '        migrations.AddField("row", "token", models.UUIDField('
        "db_default=pg_functions.RandomUUID())),",
        frozenset({"rewrite"}),
        {"token": "models.UUIDField(db_default=pg_functions.RandomUUID())"},
        needs=(5, 0),
    ),
    "add_index": Case(
        '        migrations.AddIndex("row", models.Index(fields=["code"], name="{index}")),',
        frozenset({"blocking-index"}),
        extra_models='        indexes = [models.Index(fields=["code"], name="{index}")]',
    ),
    "not_null": Case(
        '        migrations.AlterField("row", "note", models.TextField()),',
        frozenset({"scan"}), {"note": "models.TextField()"},
    ),
    "new_foreign_key": Case(
        '        migrations.AddField("row", "target", models.ForeignKey(default=1, '
        'on_delete=django.db.models.deletion.CASCADE, to="{app}.target")),',
        frozenset({"scan", "blocking-index"}),
        {"target": 'models.ForeignKey("Target", default=1, on_delete=models.CASCADE)'},
        target=True,
        tables={"scan": {"row", "target"}, "blocking-index": {"row"}},
    ),
    "new_nullable_foreign_key": Case(
        # PostgreSQL validates nothing for a new column that holds only NULLs; the index on it
        # still blocks writes.
        '        migrations.AddField("row", "target", models.ForeignKey(null=True, '
        'on_delete=django.db.models.deletion.CASCADE, to="{app}.target")),',
        frozenset({"blocking-index"}),
        {"target": 'models.ForeignKey("Target", null=True, on_delete=models.CASCADE)'},
        target=True,
    ),
    "unique": Case(
        '        migrations.AlterField("row", "code", models.CharField(max_length=20, '
        "unique=True)),",
        frozenset({"blocking-index"}), {"code": "models.CharField(max_length=20, unique=True)"},
    ),
    "lock_across_run_python": Case(
        '        migrations.AddField("row", "flag", models.IntegerField(null=True)),\n'
        "        migrations.RunPython(fill, migrations.RunPython.noop),",
        frozenset({"lock"}), {"flag": "models.IntegerField(null=True)"},
        tables={"lock": {"row"}},
    ),
}


def available() -> dict[str, Case]:
    """The cases this Django can express."""
    return {n: c for n, c in CASES.items() if django.VERSION[:2] >= c.needs}


def _check_keyword() -> str:
    return "condition" if django.VERSION >= (5, 1) else "check"


def _models(app: str, case: Case, index: str) -> str:
    fields = {**ROW_FIELDS, **case.fields}
    lines = [f"    {name} = {value}" for name, value in fields.items() if value is not None]
    text = (
        "import django.db.models.functions\n"
        "from django.contrib.postgres import functions as pg_functions\n"
        "from django.db import models\n\n\n"
    )
    if case.target:
        text += "class Target(models.Model):\n    size = models.IntegerField()\n\n\n"
    text += "class Row(models.Model):\n" + "\n".join(lines) + "\n"
    if case.extra_models == "CHILD":
        text += ("\n\nclass Child(models.Model):\n"
                 "    name = models.CharField(max_length=20, db_index=True)\n"
                 "    row = models.ForeignKey(Row, on_delete=models.CASCADE)\n")
    elif case.extra_models:
        text += "\n    class Meta:\n" + case.extra_models.format(
            check=_check_keyword(), app=app, index=index) + "\n"
    return text


def add_cases(project: Path, cases: dict[str, Case]) -> list[Path]:
    """One app ``gt_<case>`` per case; the paths of their second migrations."""
    changes = []
    apps = []
    for number, (name, case) in enumerate(cases.items()):
        app = f"gt_{name}"
        index = f"gt{number}_code_idx"
        apps.append(app)
        folder = project / app
        write(folder / "__init__.py", "")
        write(folder / "migrations" / "__init__.py", "")
        fields = "".join(f'                    ("{n}", {v}),\n' for n, v in ROW_FIELDS.items())
        write(folder / "migrations" / "0001_initial.py", INITIAL.format(
            app=app, rows=ROWS, fields=fields,
            target=TARGET.format(app=app, rows=ROWS) if case.target else ""))
        write(folder / "models.py", _models(app, case, index))
        changes.append(write(folder / "migrations" / "0002_change.py", CHANGE.format(
            app=app, atomic=case.atomic,
            operations=case.operations.format(app=app, check=_check_keyword(), index=index))))
    settings = project / "shop" / "settings.py"
    settings.write_text(settings.read_text() + f"\nINSTALLED_APPS += {apps!r}\n")
    return changes
