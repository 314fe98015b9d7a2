"""The example project with an ``inventory`` app whose migrations break only on rows.

``inventory.0001_initial`` makes ``Item``; each scenario adds ``inventory.0002`` (a defect, or its
fixed variant) and writes ``models.py`` to match, so that the models check passes and only the
round trip can fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.guardrun import write

BASE_FIELDS = {
    "code": "models.CharField(max_length=20)",
    "label": "models.CharField(max_length=50)",
    "note": "models.CharField(max_length=30, null=True)",
    "legacy": "models.IntegerField()",
}

INITIAL = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("code", models.CharField(max_length=20)),
                ("label", models.CharField(max_length=50)),
                ("note", models.CharField(max_length=30, null=True)),
                ("legacy", models.IntegerField()),
            ],
        ),
    ]
'''

MIGRATION = '''
from django.db import migrations, models
{imports}

{functions}


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]

    operations = [
{operations}
    ]
'''


@dataclass(frozen=True)
class Scenario:
    operations: str
    fields: dict[str, str | None] = field(default_factory=dict)
    """Changes to ``Item``'s fields in models.py (None: removed)."""
    functions: str = ""
    imports: str = ""
    fails: str = ""
    """For a defect: the step that fails with rows."""
    says: tuple[str, ...] = ()
    """For a defect: what its error says."""


SCENARIOS: dict[str, Scenario] = {
    "cast": Scenario(
        '        migrations.AlterField("item", "code", models.IntegerField()),',
        {"code": "models.IntegerField()"},
        fails="forward",
        says=('operation 1 of 1 (Alter field code on item)', 'column "code" of inventory_item',
              "row id=", 'invalid input syntax for type integer: "Ünïcode'),
    ),
    "cast-fixed": Scenario(
        '        migrations.AddField("item", "code_number", models.IntegerField(null=True)),\n'
        "        migrations.RunPython(parse_codes, migrations.RunPython.noop),",
        {"code_number": "models.IntegerField(null=True)"},
        functions='''
def parse_codes(apps, schema_editor):
    Item = apps.get_model("inventory", "Item")
    for item in Item.objects.all():
        digits = "".join(c for c in item.code if c in "0123456789")[:9]
        item.code_number = int(digits) if digits else None
        item.save(update_fields=["code_number"])
''',
    ),
    "unique": Scenario(
        '        migrations.AlterField("item", "label", models.CharField(max_length=50, '
        "unique=True)),",
        {"label": "models.CharField(max_length=50, unique=True)"},
        fails="forward",
        says=('column "label" of inventory_item', "is duplicated"),
    ),
    "unique-fixed": Scenario(
        "        migrations.RunPython(deduplicate, migrations.RunPython.noop),\n"
        '        migrations.AlterField("item", "label", models.CharField(max_length=50, '
        "unique=True)),",
        {"label": "models.CharField(max_length=50, unique=True)"},
        functions='''
def deduplicate(apps, schema_editor):
    Item = apps.get_model("inventory", "Item")
    seen = set()
    for item in Item.objects.order_by("pk"):
        if item.label in seen:
            item.label = f"{item.label[:40]}-{item.pk}"
            item.save(update_fields=["label"])
        seen.add(item.label)
''',
    ),
    "not-null": Scenario(
        '        migrations.AlterField("item", "note", models.CharField(max_length=30)),',
        {"note": "models.CharField(max_length=30)"},
        fails="forward",
        says=('column "note" of inventory_item', "row id=", "contains null values"),
    ),
    "not-null-fixed": Scenario(
        '        migrations.AlterField("item", "note", models.CharField(max_length=30, '
        'default="")),',
        {"note": 'models.CharField(max_length=30, default="")'},
    ),
    "remove-field": Scenario(
        '        migrations.RemoveField("item", "legacy"),',
        {"legacy": None},
        fails="backward",
        says=('column "legacy" of inventory_item', "contains null values"),
    ),
    "remove-field-fixed": Scenario(
        '        migrations.AlterField("item", "legacy", models.IntegerField(default=0)),\n'
        '        migrations.RemoveField("item", "legacy"),',
        {"legacy": None},
    ),
    "method": Scenario(
        "        migrations.RunPython(migrations.RunPython.noop, undo_labels),",
        functions='''
def undo_labels(apps, schema_editor):
    Item = apps.get_model("inventory", "Item")
    for item in Item.objects.all():
        item.label = item.normalised_label()
        item.save(update_fields=["label"])
''',
        fails="backward",
        says=("operation 1 of 1", "AttributeError", "normalised_label"),
    ),
    "method-fixed": Scenario(
        "        migrations.RunPython(migrations.RunPython.noop, undo_labels),",
        functions='''
def undo_labels(apps, schema_editor):
    Item = apps.get_model("inventory", "Item")
    for item in Item.objects.all():
        item.label = item.label.strip()[:50]
        item.save(update_fields=["label"])
''',
    ),
}


def models_py(fields: dict[str, str | None]) -> str:
    merged = {**BASE_FIELDS, **fields}
    lines = [f"    {name} = {value}" for name, value in merged.items() if value is not None]
    return (
        "from django.db import models\n\n\nclass Item(models.Model):\n" + "\n".join(lines)
        + "\n\n    def normalised_label(self):\n        return self.label.strip()\n"
    )


def add_inventory(project: Path) -> None:
    """The app, its first migration and models, in INSTALLED_APPS."""
    app = project / "inventory"
    write(app / "__init__.py", "")
    write(app / "migrations" / "__init__.py", "")
    write(app / "migrations" / "0001_initial.py", INITIAL)
    write(app / "models.py", models_py({}))
    settings = project / "shop" / "settings.py"
    settings.write_text(settings.read_text() + '\nINSTALLED_APPS += ["inventory"]\n')


def add_scenario(project: Path, name: str) -> Path:
    """``inventory.0002_<name>`` and the models that match it; the migration's path."""
    scenario = SCENARIOS[name]
    write(project / "inventory" / "models.py", models_py(scenario.fields))
    return write(
        project / "inventory" / "migrations" / f"0002_{name.replace('-', '_')}.py",
        MIGRATION.format(imports=scenario.imports, functions=scenario.functions,
                         operations=scenario.operations),
    )
