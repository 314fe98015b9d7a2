"""The example project with several databases: a scenario the multi-database tests build.

On top of the example's apps (which the router keeps on ``default``): ``audit`` only on the routed
alias ``ledger``, ``tags`` on both, ``archive`` on none, and ``replica``, a ``TEST MIRROR`` of
``default``. Every alias names a database of the project's own (``own`` below), which the tool
must never touch.
"""

from __future__ import annotations

from pathlib import Path

from tests.guardrun import write

ROUTER = '''
class Router:
    """audit lives on ledger only, tags on both, archive nowhere, the rest on default."""

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == "audit":
            return db == "ledger"
        if app_label == "tags":
            return db in ("default", "ledger")
        if app_label == "archive":
            return False
        return db == "default"
'''

SETTINGS = '''

INSTALLED_APPS += ["tags", "audit", "archive"]
DATABASES["ledger"] = {
    **DATABASES["default"],
    "NAME": os.environ.get("SHOP_LEDGER_NAME", "ledger"),
    "PORT": os.environ.get("SHOP_LEDGER_PORT", DATABASES["default"]["PORT"]),
}
DATABASES["replica"] = {
    **DATABASES["default"],
    "NAME": os.environ.get("SHOP_REPLICA_NAME", "replica"),
    "TEST": {"MIRROR": "default"},
}
DATABASE_ROUTERS = ["shop.routers.Router"]
'''

INITIAL = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="{model}",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("text", models.CharField(max_length=100)),
            ],
        ),
    ]
'''

MODELS = '''
from django.db import models


class {model}(models.Model):
    text = models.CharField(max_length=100)
'''

APPS = {"tags": "Tag", "audit": "Entry", "archive": "Record"}


def broken_reverse(app: str, table: str) -> str:
    """A migration of ``app`` whose forward works and whose reverse is not SQL."""
    return f'''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("{app}", "0001_initial")]

    operations = [
        migrations.RunSQL("CREATE TABLE {table} (id integer)", reverse_sql="THIS IS NOT SQL"),
    ]
'''


def several_databases(shop: Path, *, legacy: bool = False) -> Path:
    """Turn the example project ``shop`` into the several-database scenario."""
    write(shop / "shop/routers.py", ROUTER)
    settings = SETTINGS
    if legacy:
        settings += (
            'DATABASES["legacy"] = {"ENGINE": "django.db.backends.sqlite3", '
            '"NAME": str(__import__("pathlib").Path(__file__).parent / "legacy.sqlite3")}\n'
        )
    path = shop / "shop/settings.py"
    path.write_text(path.read_text() + settings)
    for app, model in APPS.items():
        write(shop / app / "__init__.py", "")
        write(shop / app / "models.py", MODELS.format(model=model))
        write(shop / app / "migrations/__init__.py", "")
        write(shop / app / "migrations/0001_initial.py", INITIAL.format(model=model))
    return shop
