"""Are the estimates at production size right? Each against the time its migration's SQL takes.

Run it from the repository root with the project's virtualenv (the benchmark server, PostgreSQL 15
on 127.0.0.1:5433: ``pg_ctlcluster 15 bench start``):

    .venv/bin/python benchmarks/estimates.py --repeat 3 [--guard SNAPSHOT] [--keep] [--clean]

App ``bench`` has ``Customer`` (5,000 rows), ``Order`` (``--rows``, 2,000,000) and ``Lookup``
(1,000), and a chain of one-operation migrations: 0002 makes ``Order.amount`` a bigint (a
rewrite), 0003 indexes ``Order.code`` without CONCURRENTLY, 0004 makes ``Order.note`` NOT NULL (a
scan), 0005 makes the existing ``customer_ref`` a foreign key (validated as it is added), 0006
rewrites ``Lookup`` as 0002 does ``Order``. Production: migrated to 0001, filled by SQL, read by
``migration-guard stats``; ``check`` (the five paths, ``--stats``, ``--rows 0``) estimates each
forward finding, and once more with ``--max-blocking-seconds 1``. Actual: the ``sqlmigrate`` SQL
in one transaction, commit included, on a fresh TEMPLATE copy of production with the migrations
before it applied and a CHECKPOINT (untimed), median of ``--repeat``. The bar: each estimate's
geometric middle within 2x of the actual time, its range at most 4x wide.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from databases import Databases, Server, ServerError
from psycopg2 import sql
from run import BenchmarkError, _version, base_env

DEFAULT_URL = "postgres://postgres@127.0.0.1:5433/postgres"
CALIBRATION = "migration_guard_cache_calibration"
REPOSITORY = Path(__file__).resolve().parents[1]
PREFIX = "bench_estimates_"
BUDGET = 1.0
SMALL = 1_000
CUSTOMERS = 5_000

SETTINGS = '''import os

SECRET_KEY, USE_TZ, DEFAULT_AUTO_FIELD = "bench-only", True, "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "bench"]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", **{
    key: os.environ[f"BENCH_DB_{key}"] for key in ("NAME", "HOST", "PORT", "USER", "PASSWORD")}}}
'''
MANAGE = ('import os\nimport sys\n\nfrom django.core.management import execute_from_command_line'
          '\n\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")\n'
          'execute_from_command_line(sys.argv)\n')
MODELS = '''from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=50)

class Order(models.Model):
    amount = models.BigIntegerField()
    code = models.CharField(max_length=100)
    note = models.IntegerField()
    customer = models.ForeignKey(Customer, models.PROTECT, db_column="customer_ref", db_index=False)
    class Meta:
        indexes = [models.Index(fields=["code"], name="bench_order_code")]

class Lookup(models.Model):
    amount = models.BigIntegerField()
    code = models.CharField(max_length=100)
    note = models.IntegerField(null=True)
    customer = models.BigIntegerField(db_column="customer_ref")
'''
KEY = ('("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, '
       'verbose_name="ID"))')
SHAPE = (f'{KEY}, ("amount", models.IntegerField()), '
         '("code", models.CharField(max_length=100)), ("note", models.IntegerField(null=True)), '
         '("customer", models.BigIntegerField(db_column="customer_ref"))')
INITIAL = f'''        migrations.CreateModel("Customer", fields=[
            {KEY}, ("name", models.CharField(max_length=50))]),
        migrations.CreateModel("Order", fields=[{SHAPE}]),
        migrations.CreateModel("Lookup", fields=[{SHAPE}]),'''
MIGRATION = '''import django.db.models.deletion  # noqa: F401
from django.db import migrations, models

class Migration(migrations.Migration):
    initial = {initial}
    dependencies = [{dependencies}]
    operations = [
{operations}
    ]
'''


@dataclass(frozen=True)
class Step:
    name: str
    operation: str
    code: str


STEPS = (
    Step("0002_widen_order", "AlterField Order.amount -> bigint",
         'migrations.AlterField("order", "amount", models.BigIntegerField())'),
    Step("0003_index_order_code", "AddIndex Order.code",
         'migrations.AddIndex("order", models.Index(fields=["code"], name="bench_order_code"))'),
    Step("0004_note_not_null", "AlterField Order.note NOT NULL",
         'migrations.AlterField("order", "note", models.IntegerField())'),
    Step("0005_customer_fk", "AlterField Order.customer -> FK",
         'migrations.AlterField("order", "customer", models.ForeignKey("bench.customer", '
         'django.db.models.deletion.PROTECT, db_column="customer_ref", db_index=False))'),
    Step("0006_widen_lookup", "AlterField Lookup.amount -> bigint",
         'migrations.AlterField("lookup", "amount", models.BigIntegerField())'),
)
PRODUCTION = """
INSERT INTO bench_customer (id, name)
    SELECT g, 'customer ' || g FROM generate_series(1, {customers}) g;
INSERT INTO bench_order (amount, code, note, customer_ref)
    SELECT ((g::bigint * 7919) % 1000003)::int, md5(g::text), g % 1000, 1 + (g * 31) % {customers}
    FROM generate_series(1, {rows}) g;
INSERT INTO bench_lookup (amount, code, note, customer_ref)
    SELECT g, md5(g::text), g % 1000, 1 + g % {customers} FROM generate_series(1, {small}) g;
VACUUM ANALYZE bench_customer; VACUUM ANALYZE bench_order; VACUUM ANALYZE bench_lookup
"""


@dataclass(frozen=True)
class Options:
    rows: int
    repeat: int
    server: Server
    db: str
    guard: Path
    keep: bool
    clean: bool


class Throwaway(Databases):
    """``Databases`` with names and templates of its own: each one made is dropped on close."""

    def make(self, name: str, template: str | None = None) -> str:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self._execute(statement)
        self.created.append(name)
        return name


def call(command: Sequence[str], cwd: Path, env: Mapping[str, str],
         ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; an exit code not in ``ok`` aborts with its output."""
    done = subprocess.run(list(command), cwd=cwd, env=dict(env), capture_output=True, text=True,
                          check=False)
    if done.returncode not in ok:
        raise BenchmarkError(f"`{' '.join(command)}` exited {done.returncode}\n--- stdout ---\n"
                             f"{done.stdout.rstrip()}\n--- stderr ---\n{done.stderr.rstrip()}")
    return done


def execute(server: Server, statement: str, database: str | None = None) -> None:
    with closing(server.connect(database)) as conn:
        conn.cursor().execute(statement)


def statements(text: str) -> list[str]:
    """``sqlmigrate``'s statements, without its comments, BEGIN and COMMIT."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    parts = (part.strip() for part in re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE))
    return [part for part in parts if part and part.upper() not in ("BEGIN", "COMMIT")]


@dataclass
class Bench:
    options: Options
    project: Path
    dbs: Throwaway
    production: str = ""

    def env(self, database: str) -> dict[str, str]:
        """A developer's shell, bytecode caches on, migration-guard imported from ``--guard``."""
        env = {**base_env(), **self.options.server.django_env(database),
               "PYTHONPATH": str(self.options.guard)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def manage(self, database: str, *args: str) -> str:
        return call([sys.executable, "manage.py", *args], self.project, self.env(database)).stdout

    def guard(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        return call([sys.executable, "-m", "guard", *args], self.project,
                    self.env(f"{PREFIX}unused"), ok)

    def write_project(self) -> None:
        app = self.project / "bench"
        (app / "migrations").mkdir(parents=True)
        for path, text in ((self.project / "settings.py", SETTINGS),
                           (self.project / "manage.py", MANAGE), (app / "__init__.py", ""),
                           (app / "migrations" / "__init__.py", ""), (app / "models.py", MODELS)):
            path.write_text(text)
        previous = "0001_initial"
        (app / "migrations" / f"{previous}.py").write_text(MIGRATION.format(
            initial=True, dependencies="", operations=INITIAL))
        for step in STEPS:
            (app / "migrations" / f"{step.name}.py").write_text(MIGRATION.format(
                initial=False, dependencies=f'("bench", "{previous}")',
                operations=f"        {step.code},"))
            previous = step.name

    def build_production(self) -> None:
        self.production = name = self.dbs.make(f"{PREFIX}prod_{os.getpid()}")
        self.manage(name, "makemigrations", "--check", "--dry-run", "bench")
        self.manage(name, "migrate", "auth", "--noinput")
        self.manage(name, "migrate", "bench", "0001", "--noinput")
        filled = PRODUCTION.format(rows=self.options.rows, small=SMALL, customers=CUSTOMERS)
        for statement in filter(str.strip, filled.split(";")):
            execute(self.options.server, statement, name)  # one by one: VACUUM refuses a block

    def check(self, stats: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
        paths = [str(self.project / "bench" / "migrations" / f"{s.name}.py") for s in STEPS]
        done = self.guard("check", *paths, "--project-dir", str(self.project), "--db",
                          self.options.db, "--stats", str(stats), "--format", "json",
                          "--no-github", "--rows", "0", *extra, ok=(0, 1))
        try:
            return done.returncode, json.loads(done.stdout), done.stderr
        except json.JSONDecodeError as exc:
            raise BenchmarkError(f"check printed no JSON report:\n{done.stderr}") from exc

    def timed_once(self, index: int, sqls: list[str]) -> float:
        """The migration's SQL in one transaction on a fresh copy, the ones before it applied."""
        copy = self.dbs.make(f"{PREFIX}copy_{os.getpid()}_{len(self.dbs.created)}",
                             self.production)
        try:
            if index:
                self.manage(copy, "migrate", "bench", STEPS[index - 1].name, "--noinput")
            execute(self.options.server, "CHECKPOINT")
            with closing(self.options.server.connect(copy)) as conn:
                conn.autocommit = False
                cur = conn.cursor()
                started = time.perf_counter()
                for statement in sqls:
                    cur.execute(statement)
                conn.commit()
                return time.perf_counter() - started
        finally:
            self.dbs.drop(copy)

    def actual_times(self) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        for index, step in enumerate(STEPS):
            sqls = statements(self.manage(self.production, "sqlmigrate", "bench", step.name))
            print(f"  {step.name}: {' ; '.join(s[:110] for s in sqls)}", flush=True)
            found[step.name] = runs = [self.timed_once(index, sqls)
                                       for _ in range(self.options.repeat)]
            print(f"    {statistics.median(runs):.3f}s (runs: "
                  f"{', '.join(f'{s:.3f}' for s in runs)})", flush=True)
        return found


def forward(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["direction"] == "forward"]


def calibration(server: Server) -> str:
    """The rates migration-guard measured on this server, from its calibration cache."""
    found = server.query("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                         f"WHERE datname = '{CALIBRATION}'")
    r = {"rows": 0, "measured_at": time.time(), "rewrite_bytes": 0, "scan_bytes": 0,
         "index_rows": 0, "fk_rows": 0, **(json.loads(found[0][0] or "{}").get("rates", {})
                                             if found else {})}
    return (f"calibration ({r['rows']:,} rows, measured "
            f"{(time.time() - r['measured_at']) / 60:.0f} min ago): rewrite "
            f"{r['rewrite_bytes'] / 2**20:.1f} MB/s, scan {r['scan_bytes'] / 2**20:.1f} MB/s, "
            f"index {r['index_rows']:,.0f} rows/s, fk {r['fk_rows']:,.0f} rows/s")


def machine(options: Options) -> list[str]:
    def grep(path: str, pattern: str) -> str | None:
        found = re.search(pattern, Path(path).read_text(), re.MULTILINE)
        return found.group(1).strip() if found else None
    memory = grep("/proc/meminfo", r"^MemTotal:\s*(\d+) kB")
    cpu = grep("/proc/cpuinfo", r"^model name\s*:\s*(.+)$") or "unknown"
    settings = options.server.query(
        "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) "
        "FROM pg_settings WHERE name IN ('shared_buffers', 'maintenance_work_mem', "
        "'max_parallel_maintenance_workers', 'work_mem')")[0][0]
    return [
        f"machine: {len(os.sched_getaffinity(0))} CPU(s) (nproc)"
        + (f", {int(memory) / 2**20:.1f} GiB memory" if memory else ""),
        f"cpu: {cpu}",
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"python {sys.version.split()[0]}, django {_version('django')}, "
        f"psycopg2 {_version('psycopg2-binary') or _version('psycopg2')}, migration-guard from "
        f"{options.guard}",
        f"postgresql {options.server.version()} at {options.server.host}:"
        f"{options.server.port} ({settings}); migration-guard --db {options.db}",
    ]


def table(findings: list[dict[str, Any]], budgeted: list[dict[str, Any]],
          actual: Mapping[str, list[float]]) -> list[str]:
    header = (f"{'migration':<22}{'operation':<35}{'kind':<15}{'rows':>10}{'estimate':>17}"
              f"{'middle':>9}{'actual':>9}{'mid/act':>9}{'width':>7}  within 2x  budget 1s")
    lines = [header, "-" * len(header)]
    names = [s.name for s in STEPS]
    fails = {(f["migration"], f["kind"], f["table"]): f.get("failing") for f in budgeted}
    for finding in sorted(findings, key=lambda f: names.index(f["migration"].split(".", 1)[1])):
        name, estimate = finding["migration"].split(".", 1)[1], finding.get("estimate") or {}
        low, high = estimate.get("seconds") or (math.nan, math.nan)
        middle, median = math.sqrt(low * high), statistics.median(actual[name])
        ratio = middle / median
        failing = fails.get((finding["migration"], finding["kind"], finding["table"]))
        lines.append(
            f"{name:<22}{STEPS[names.index(name)].operation:<35}{finding['kind']:<15}"
            f"{estimate.get('rows') or 0:>10,}{f'{low:.3g}-{high:.3g}s':>17}{middle:>8.3g}s"
            f"{median:>8.3g}s{ratio:>8.2f}x{high / low:>6.2f}x  "
            f"{'yes' if 0.5 <= ratio <= 2 and high / low <= 4 else 'NO':<9}  "
            f"{'-' if failing is None else 'fails' if failing else 'passes'}")
    return lines


def benchmark(options: Options) -> int:
    print("\n".join(machine(options)), flush=True)
    root = Path(tempfile.mkdtemp(prefix="mg-bench-estimates-"))
    dbs = Throwaway(options.server)
    try:
        with dbs:
            bench = Bench(options, root / "project", dbs)
            bench.write_project()
            started = time.perf_counter()
            bench.build_production()
            print(f"\nproduction {bench.production}: {options.rows:,} orders, {SMALL:,} lookups, "
                  f"{CUSTOMERS:,} customers, built in {time.perf_counter() - started:.1f}s")
            server, stats = options.server, root / "stats.json"
            bench.guard("stats", "--db", f"postgres://{server.user}@{server.host}:"
                        f"{server.port}/{bench.production}", "--output", str(stats))
            _, report, stderr = bench.check(stats)
            print("".join(f"{line.strip()}\n" for line in stderr.splitlines()
                          if "calibration:" in line), end="")
            print(calibration(server), flush=True)
            code, budgeted, _ = bench.check(stats, "--max-blocking-seconds", f"{BUDGET:g}")
            print(f"\nactual times, median of {options.repeat} fresh copies:", flush=True)
            actual = bench.actual_times()
        print(f"\nforward findings: estimate (geometric middle) / actual (sqlmigrate's SQL on "
              f"a copy of production, median of {options.repeat}):")
        print("\n".join(table(forward(report), forward(budgeted), actual)))
        print(f"\n--max-blocking-seconds {BUDGET:g}: exit code {code}")
        for step, rows in ((STEPS[-1], SMALL), (STEPS[0], options.rows)):
            mine = [f.get("failing") for f in forward(budgeted)
                    if f["migration"] == f"bench.{step.name}" and f["kind"] == "rewrite"]
            print(f"  rewrite of {rows:,} rows ({step.name}): "
                  f"{'no rewrite finding' if not mine else 'fails' if any(mine) else 'passes'}")
    finally:
        if options.keep:
            print(f"\nkept the project in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        if options.clean:
            call([sys.executable, "-m", "guard", "clean", "--db", options.db], REPOSITORY,
                 {**base_env(), "PYTHONPATH": str(options.guard)})
    return 0


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of Order")
    parser.add_argument("--repeat", type=int, default=3, help="copies timed per migration")
    parser.add_argument("--server", default=DEFAULT_URL, help="production's server (port 5433)")
    parser.add_argument("--db", help="migration-guard's --db (default: --server)")
    parser.add_argument("--guard", type=Path, default=REPOSITORY, help="its PYTHONPATH (a tree)")
    parser.add_argument("--keep", action="store_true", help="keep the generated project")
    parser.add_argument("--clean", action="store_true", help="migration-guard clean at the end")
    args = parser.parse_args(argv)
    if min(args.repeat, args.rows) < 1:
        parser.error("--repeat and --rows: at least 1")
    return Options(rows=args.rows, repeat=args.repeat, server=Server.from_url(args.server),
                   db=args.db or args.server, guard=args.guard.resolve(), keep=args.keep,
                   clean=args.clean)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    try:
        return benchmark(options)
    except (BenchmarkError, ServerError) as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
