"""The backward and forward-again steps reuse the states of the first forward
(guard/execution/replay.py): they must send PostgreSQL exactly what Django's own ``unapply`` and
``apply`` send, and fall back to those where a migration brings its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.guardrun import write

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

ROOT = Path(__file__).resolve().parent.parent

# Every kind of operation whose database side reads the states: relations, a rename, a
# RunPython that uses the historical model both ways, an index, state and database apart.
MANY = '''
from django.db import migrations, models
from django.db.models import F


def copy_status(apps, schema_editor):
    apps.get_model("orders", "Order").objects.update(note=F("status"))


def clear_note(apps, schema_editor):
    apps.get_model("orders", "Order").objects.update(note="x")


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status"), ("catalog", "0003_category")]

    operations = [
        migrations.AddField("order", "note", models.CharField(max_length=50, default="x")),
        migrations.AddField("order", "category", models.ForeignKey(
            "catalog.Category", null=True, on_delete=models.SET_NULL)),
        migrations.RunPython(copy_status, clear_note),
        migrations.RenameField("order", "note", "remark"),
        migrations.AlterField("order", "remark", models.CharField(max_length=80, default="y")),
        migrations.AddIndex("order", models.Index(fields=["remark"], name="orders_remark_idx")),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddField("order", "flag", models.BooleanField(
                default=False))],
            database_operations=[migrations.RunSQL(
                "ALTER TABLE orders_order ADD COLUMN flag boolean NOT NULL DEFAULT false",
                "ALTER TABLE orders_order DROP COLUMN flag")],
        ),
    ]
'''

# Not atomic: each atomic operation gets a transaction of its own, as Django does it.
NOT_ATOMIC = '''
from django.db import migrations, models


def in_transaction(schema_editor):
    if not schema_editor.connection.in_atomic_block:
        raise RuntimeError("RunPython(atomic=True) ran outside a transaction")


def shout(apps, schema_editor):
    in_transaction(schema_editor)
    Order = apps.get_model("orders", "Order")
    for order in Order.objects.all():
        order.remark = order.remark.upper()
        order.save(update_fields=["remark"])


def unshout(apps, schema_editor):
    in_transaction(schema_editor)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("orders", "0003_many")]

    operations = [
        migrations.RunPython(shout, unshout, atomic=True),
        migrations.AddField("order", "weight", models.IntegerField(null=True)),
        migrations.RemoveField("order", "category"),
    ]
'''

# A migration class with an apply of its own: never replayed.
OWN_APPLY = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_not_atomic")]

    operations = [migrations.AddField("order", "size", models.IntegerField(default=0))]

    def apply(self, project_state, schema_editor, collect_sql=False):
        schema_editor.execute("SELECT 'own apply'")
        return super().apply(project_state, schema_editor, collect_sql)

    def unapply(self, project_state, schema_editor, collect_sql=False):
        schema_editor.execute("SELECT 'own unapply'")
        return super().unapply(project_state, schema_editor, collect_sql)
'''

MODELS = '''
from django.db import models


class Order(models.Model):
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=20, default="new")
    remark = models.CharField(max_length=80, default="y")
    flag = models.BooleanField(default=False)
    weight = models.IntegerField(null=True)
    size = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["remark"], name="orders_remark_idx")]
'''

# Runs the real command in this interpreter and writes every statement Django's cursors sent;
# with "django" as its second argument the round trip computes its states the way Django does.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from django.db.backends import utils
    from guard.execution import replay
    from guard.main import main

    sent = []
    for name in ("_execute", "_executemany"):
        original = getattr(utils.CursorWrapper, name)

        def recording(self, sql, *args, _original=original):
            sent.append(sql)
            return _original(self, sql, *args)

        setattr(utils.CursorWrapper, name, recording)
    if sys.argv[2] == "django":
        replay.pairs = lambda migration, recorded: None
    replayed = []
    replaying = replay.replaying

    def noting(migration, states):
        replayed.append([migration.app_label, migration.name, states is not None])
        return replaying(migration, states)

    replay.replaying = noting
    code = main(json.loads(sys.argv[3]))
    with open(sys.argv[1], "w") as out:
        json.dump({"code": code, "sent": sent, "replayed": replayed}, out)
    """
)


def _round_trip(shop: Path, pg_url: str, tmp_path: Path, how: str) -> dict[str, object]:
    out = tmp_path / f"{how}.json"
    migrations = sorted(str(p) for p in (shop / "orders/migrations").glob("0*.py"))
    argv = ["check", *migrations, "--project-dir", str(shop), "--db", pg_url,
            "--format", f"json={tmp_path / how}-report.json"]
    environ = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out), how, json.dumps(argv)],
                          cwd=shop, env=environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(out.read_text())
    return result


def test_replayed_steps_send_what_djangos_own_methods_send(
    shop: Path, pg_url: str, tmp_path: Path
) -> None:
    write(shop / "orders/migrations/0003_many.py", MANY)
    write(shop / "orders/migrations/0004_not_atomic.py", NOT_ATOMIC)
    write(shop / "orders/migrations/0005_own_apply.py", OWN_APPLY)
    write(shop / "orders/models.py", MODELS)
    _round_trip(shop, pg_url, tmp_path, "warm-up")  # builds the cached base both runs use
    ours = _round_trip(shop, pg_url, tmp_path, "replay")
    djangos = _round_trip(shop, pg_url, tmp_path, "django")

    assert ours["code"] == djangos["code"] == 0
    report = json.loads((tmp_path / "replay-report.json").read_text())
    tested = {r["migration"] for r in report["results"]}
    assert {"orders.0003_many", "orders.0004_not_atomic", "orders.0005_own_apply"} <= tested
    # Backward and forward again run on the kept states, but for the migration with an apply
    # of its own, which Django's methods run; with replaying off, nothing is kept.
    replayed = ours["replayed"]
    assert isinstance(replayed, list)
    kept = [f"{app}.{name}" for app, name, states in replayed if states]
    assert set(kept) == tested - {"orders.0005_own_apply"}
    assert all(kept.count(label) == 2 for label in kept)
    assert not any(states for _, _, states in djangos["replayed"])  # type: ignore[union-attr]
    # The same statements, in the same order, from start to end.
    assert ours["sent"] == djangos["sent"]
    statements = ours["sent"]
    assert isinstance(statements, list)
    assert statements.count("SELECT 'own unapply'") == 1
    assert statements.count("SELECT 'own apply'") == 2
    assert any("RENAME COLUMN" in sql and '"remark" TO "note"' in sql for sql in statements)
