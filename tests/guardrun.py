"""Running the real ``migration-guard`` command as a user would, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.stdout)  # type: ignore[no-any-return]

    def selection(self) -> list[tuple[str, str]]:
        return [(s["migration"], s["reason"]) for s in self.report["selected"]]

    def failed_steps(self) -> list[tuple[str, str]]:
        return [
            (r["migration"], s["step"])
            for r in self.report["results"]
            for s in r["steps"]
            if s["ok"] is False
        ]


def run_guard(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
    timeout: float = 300,
) -> Run:
    environ = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    environ.pop("MIGRATION_GUARD_DATABASE_URL", None)
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "guard", *map(str, args)],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# catalog.0001 and 0002 squashed into one: a scenario several tests add.
SQUASH = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [("catalog", "0001_initial"), ("catalog", "0002_product_sku")]
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Product",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200)),
                ("price", models.DecimalField(decimal_places=2, max_digits=10)),
                ("sku", models.CharField(max_length=32, unique=True)),
            ],
        ),
    ]
'''


# What selecting a file the squash replaces gives: the squash, and everything after it.
SQUASH_SELECTION = [
    ("catalog.0001_squashed_0002_product_sku", "changed"),
    ("orders.0001_initial", "dependent"),
    ("billing.0001_initial", "dependent"),
    ("catalog.0003_category", "dependent"),
    ("orders.0002_order_status", "dependent"),
]
