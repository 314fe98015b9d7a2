"""Reports where reviewers look: several formats at once, JUnit XML, GitHub annotations and step
summary, and hints with the fix written out (the SQL that undoes what a reverse leaves)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.database import throwaway
from guard.database.server import Server, connect
from guard.execution.schema import diff, snapshot
from guard.execution.undo import statements
from tests.guardrun import Run, run_guard, write
from tests.test_schema import BASE as SCHEMA_BASE

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]

LEFTOVER = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_status")]

    operations = [
        migrations.RunSQL("CREATE TABLE orders_audit (id int)", reverse_sql={reverse}),
    ]
'''

# Line 8 is `class Migration`, line 13 the RunPython: what the annotation must point at.
IRREVERSIBLE = '''from django.db import migrations


def forwards(apps, schema_editor):
    pass


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_category")]

    operations = [
        migrations.RunSQL("SELECT 1", reverse_sql="SELECT 2"),
        migrations.RunPython(forwards),
    ]
'''


def leftover(shop: Path, reverse: str = '"SELECT 1"') -> Path:
    return write(shop / "orders/migrations/0003_x.py", LEFTOVER.format(reverse=reverse))


def irreversible(shop: Path) -> Path:
    return write(shop / "catalog/migrations/0004_irreversible.py", IRREVERSIBLE)


def check(shop: Path, pg_url: str, *args: str | Path, env: dict[str, str] | None = None) -> Run:
    return run_guard("check", *args, "--project-dir", shop, "--db", pg_url, env=env)


def cases(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(c.get("classname", ""), c.get("name", "")): c for c in root.iter("testcase")}


def test_junit_names_each_step_the_failures_and_what_was_skipped(
    shop: Path, pg_url: str
) -> None:
    report = shop / "reports/junit.xml"
    report.parent.mkdir()
    run = check(shop, pg_url, leftover(shop), irreversible(shop),
                "--format", "json", "--format", f"junit={report}")
    assert run.returncode == 1, run.stderr
    assert run.report["passed"] is False  # stdout holds the JSON report alone
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "migration-guard"
    found = cases(suite)
    assert list(found) == [
        ("catalog.0004_irreversible", "forward"),
        ("catalog.0004_irreversible", "backward"),
        ("catalog.0004_irreversible", "forward-again"),
        ("catalog.0004_irreversible", "irreversible operation 2"),
        ("orders.0003_x", "forward"),
        ("orders.0003_x", "backward"),
        ("orders.0003_x", "forward-again"),
        ("checks", "conflicting migrations"),
        ("checks", "system checks"),
        ("checks", "models match migrations"),
    ]
    failed = {key: case.find("failure") for key, case in found.items()
              if case.find("failure") is not None}
    skipped = {key: case.find("skipped") for key, case in found.items()
               if case.find("skipped") is not None}
    assert sorted(failed) == [
        ("catalog.0004_irreversible", "irreversible operation 2"),
        ("orders.0003_x", "backward"),
        ("orders.0003_x", "forward-again"),
    ]
    assert sorted(skipped) == [
        ("catalog.0004_irreversible", "backward"),
        ("catalog.0004_irreversible", "forward-again"),
    ]
    for element in (root, suite):
        assert element.get("tests") == "10"
        assert element.get("failures") == "3"
        assert element.get("skipped") == "2"
        assert element.get("errors") == "0"
        assert float(element.get("time", "-1")) > 0
    assert sum(float(c.get("time", "-1")) for c in found.values()) > 0

    backward = failed[("orders.0003_x", "backward")]
    assert backward is not None
    assert backward.get("message") == "rolling it back does not restore the schema from before it"
    body = backward.text or ""
    assert '- table "orders_audit": unexpected' in body
    assert 'undo: DROP TABLE "orders_audit";' in body
    assert """reverse_sql='DROP TABLE "orders_audit";'""" in body
    again = failed[("orders.0003_x", "forward-again")]
    assert again is not None
    assert 'relation "orders_audit" already exists' in again.get("message", "")
    refused = failed[("catalog.0004_irreversible", "irreversible operation 2")]
    assert refused is not None
    assert refused.get("message") == (
        "catalog.0004_irreversible: operation 2, RunPython(forwards) has no reverse_code, "
        "cannot be reversed"
    )
    assert ("migrations.RunPython(forwards, reverse_code=migrations.RunPython.noop)"
            in (refused.text or ""))
    not_run = skipped[("catalog.0004_irreversible", "backward")]
    assert not_run is not None
    assert not_run.get("message") == "not run: the migration cannot be reversed"
    # The JSON report carries the same hints.
    steps = {(r["migration"], s["step"]): s for r in run.report["results"] for s in r["steps"]}
    assert steps[("orders.0003_x", "backward")]["undo_sql"] == ['DROP TABLE "orders_audit";']
    assert ("migrations.RunPython(forwards, reverse_code=migrations.RunPython.noop)"
            in steps[("catalog.0004_irreversible", "backward")]["hint"])


def test_an_accepted_irreversible_operation_is_a_skipped_test(shop: Path, pg_url: str) -> None:
    write(shop / "pyproject.toml",
          '[tool.migration-guard]\nallow_irreversible = ["catalog.0004_irreversible"]\n')
    report = shop / "junit.xml"
    run = check(shop, pg_url, irreversible(shop), "--format", f"junit={report}")
    assert run.returncode == 0, run.stderr
    case = cases(ET.parse(report).getroot())[("catalog.0004_irreversible",
                                              "irreversible operation 2")]
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("accepted")
    assert case.find("failure") is None


def test_text_on_stdout_and_junit_in_a_file_at_once(shop: Path, pg_url: str) -> None:
    report = shop / "junit.xml"
    run = check(shop, pg_url, leftover(shop), "--format", "text", "--format", f"junit={report}")
    assert run.returncode == 1, run.stderr
    assert "<testsuite" not in run.stdout
    assert "FAILED orders.0003_x: backward:" in run.stdout
    assert '  undo: DROP TABLE "orders_audit";' in run.stdout
    assert run.stdout.splitlines()[-1].startswith("migration-guard FAILED: 0 of 1 migration(s)")
    assert ET.parse(report).getroot().get("failures") == "2"
    # Progress stays on stderr.
    assert "  orders.0003_x " in run.stderr and "| backward FAILED" in run.stderr


def test_only_one_report_can_go_to_stdout(shop: Path, pg_url: str) -> None:
    run = check(shop, pg_url, leftover(shop), "--format", "text", "--format", "json")
    assert run.returncode == 2
    assert "text and json would both go to stdout" in run.stderr
    run = check(shop, pg_url, leftover(shop), "--format", "xml")
    assert run.returncode == 2
    assert "unknown format 'xml'" in run.stderr


def test_a_report_in_a_file_alone_keeps_the_text_on_stdout(shop: Path, pg_url: str) -> None:
    out = shop / "report.json"
    run = check(shop, pg_url, shop / "orders/migrations/0002_order_status.py",
                "--format", f"json={out}")
    assert run.returncode == 0, run.stderr
    # The text report stays on stdout: its warnings (the safety findings), then the summary.
    assert run.stdout.splitlines()[-1].startswith("migration-guard passed: ")
    assert '"passed": true' in out.read_text()


def test_github_annotations_and_step_summary(shop: Path, pg_url: str, tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("## earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
           "GITHUB_WORKSPACE": str(shop)}
    run = check(shop, pg_url, leftover(shop), irreversible(shop), env=env)
    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert errors[0] == (
        "::error file=catalog/migrations/0004_irreversible.py,line=13,"
        "title=migration-guard%3A catalog.0004_irreversible irreversible::"
        "catalog.0004_irreversible: operation 2, RunPython(forwards) has no reverse_code, "
        "cannot be reversed%0AIf doing nothing on rollback is right, use "
        "`migrations.RunPython(forwards, reverse_code=migrations.RunPython.noop)`; else give "
        "it a reverse that undoes it, or accept it with allow_irreversible = "
        '["catalog.0004_irreversible"] in [tool.migration-guard].'
    )
    assert errors[1] == (
        "::error file=orders/migrations/0003_x.py,line=4,"
        "title=migration-guard%3A orders.0003_x backward::"
        "rolling it back does not restore the schema from before it"
        '%0A- column "orders_audit"."id": unexpected%0A- table "orders_audit": unexpected'
        '%0Aundo: DROP TABLE "orders_audit";%0Ahint: The reverse of orders.0003_x does not '
        "undo everything its forward did. If the reverse should undo it, add "
        """reverse_sql='DROP TABLE "orders_audit";' to the RunSQL that made the change / a """
        'reverse step that runs: DROP TABLE "orders_audit"; (as the migration\'s first '
        "operation: migrations.RunSQL(migrations.RunSQL.noop, "
        """reverse_sql='DROP TABLE "orders_audit";'))."""
    )
    # A failed step points at the operation it failed in (line 8 is the RunSQL), and says so.
    assert errors[2].startswith(
        "::error file=orders/migrations/0003_x.py,line=8,"
        "title=migration-guard%3A orders.0003_x forward-again::operation 1 of 1 (Raw SQL "
        'operation): ProgrammingError: relation "orders_audit" already exists'
    ), errors[2]
    assert len(errors) == 3
    # The report itself comes first, then the annotations.
    assert run.stdout.index("FAILED orders.0003_x") < run.stdout.index("::error")

    text = summary.read_text()
    assert text.startswith("## earlier step\n### migration-guard FAILED\n")
    assert "| migration | forward | backward | forward again | notes |" in text
    assert ('| `orders.0003_x` | ✅ ok | ❌ failed | ❌ failed | backward: rolling it back does '
            "not restore the schema from before it<br>") in text
    assert ("| `catalog.0004_irreversible` | ✅ ok | ⏭️ skipped | ⏭️ skipped | irreversible: "
            "operation 2, RunPython(forwards) has no reverse_code |") in text
    assert "| system checks | ✅ ok |  |" in text
    assert text.rstrip().splitlines()[-1].startswith("migration-guard FAILED: 0 of 2 migration(s)")

    summary.unlink()
    run = check(shop, pg_url, leftover(shop), irreversible(shop), "--no-github", env=env)
    assert run.returncode == 1, run.stderr
    assert "::error" not in run.stdout + run.stderr
    assert not summary.exists()


def test_annotations_go_to_stderr_when_stdout_holds_json(shop: Path, pg_url: str) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(shop)}
    run = check(shop, pg_url, leftover(shop), "--format", "json", env=env)
    assert run.returncode == 1, run.stderr
    assert run.report["passed"] is False
    assert "::error file=orders/migrations/0003_x.py,line=4," in run.stderr


def test_undo_sql_for_a_reverse_that_leaves_a_table_and_it_fixes_it(
    shop: Path, pg_url: str
) -> None:
    path = leftover(shop)
    run = check(shop, pg_url, path, "--format", "json")
    assert run.returncode == 1, run.stderr
    backward = run.report["results"][0]["steps"][1]
    assert backward["undo_sql"] == ['DROP TABLE "orders_audit";']
    assert """reverse_sql='DROP TABLE "orders_audit";'""" in backward["hint"]
    # Writing the suggestion into the migration makes it pass.
    leftover(shop, reverse=repr(backward["undo_sql"][0]))
    run = check(shop, pg_url, path, "--format", "json")
    assert run.returncode == 0, run.stdout


def test_undo_sql_for_a_reverse_that_leaves_an_index_and_it_fixes_it(
    shop: Path, pg_url: str
) -> None:
    path = write(shop / "orders/migrations/0003_index_stays.py", LEFTOVER.replace(
        "CREATE TABLE orders_audit (id int)",
        "CREATE INDEX orders_status_idx ON orders_order (status)",
    ).format(reverse="migrations.RunSQL.noop"))
    run = check(shop, pg_url, path, "--format", "json")
    assert run.returncode == 1, run.stderr
    backward = run.report["results"][0]["steps"][1]
    assert backward["undo_sql"] == ['DROP INDEX "orders_status_idx";']
    assert "reverse_sql='DROP INDEX \"orders_status_idx\";'" in backward["hint"]
    write(path, path.read_text().replace("migrations.RunSQL.noop",
                                         repr(backward["undo_sql"][0])))
    run = check(shop, pg_url, path, "--format", "json")
    assert run.returncode == 0, run.stdout


# The undo SQL of every kind of difference, checked by running it: the schema comes back.

BASE = SCHEMA_BASE + """
CREATE VIEW shop_open AS SELECT id FROM shop_order WHERE status = 'new';
"""

CHANGES = {
    "table left": "CREATE TABLE shop_audit (id bigint GENERATED BY DEFAULT AS IDENTITY "
                  "PRIMARY KEY, order_id bigint REFERENCES shop_order (id), note text)",
    "table gone": "DROP VIEW shop_open; DROP TABLE shop_order",
    "column left": "ALTER TABLE shop_order ADD COLUMN extra integer NOT NULL DEFAULT 3",
    "column gone": "ALTER TABLE shop_order DROP COLUMN note",
    "column with default gone": "DROP VIEW shop_open; ALTER TABLE shop_order DROP COLUMN status",
    "column type": "ALTER TABLE shop_order ALTER COLUMN code TYPE varchar(40)",
    "not null": "ALTER TABLE shop_order ALTER COLUMN note SET NOT NULL",
    "default": "ALTER TABLE shop_order ALTER COLUMN status DROP DEFAULT",
    "index left": "CREATE UNIQUE INDEX shop_order_lower_code ON shop_order (lower(code))",
    "index gone": "DROP INDEX shop_order_customer_id_idx",
    "constraint left": "ALTER TABLE shop_order ADD CONSTRAINT shop_code_set CHECK (code <> '')",
    "unique gone": "ALTER TABLE shop_order DROP CONSTRAINT shop_order_code_key",
    "foreign key gone": "ALTER TABLE shop_order DROP CONSTRAINT shop_order_customer_id_fkey",
    "view left": "CREATE VIEW shop_names AS SELECT name FROM shop_customer",
    "view gone": "DROP VIEW shop_open",
    "trigger and function left": (
        "CREATE FUNCTION shop_touch() RETURNS trigger LANGUAGE plpgsql AS "
        "'BEGIN RETURN NEW; END'; CREATE TRIGGER shop_order_touch BEFORE UPDATE ON shop_order "
        "FOR EACH ROW EXECUTE FUNCTION shop_touch()"
    ),
    "sequence left": "CREATE SEQUENCE shop_ticket START 100 INCREMENT 5",
    "enum left": "CREATE TYPE shop_status AS ENUM ('new', 'paid')",
    "schema left": "CREATE SCHEMA extra; CREATE TABLE extra.thing (id serial PRIMARY KEY)",
}


@pytest.fixture(scope="module")
def conn(pg_server: Server) -> Iterator[Any]:
    with throwaway.throwaway_database(pg_server, "undo_test") as name:
        connection = connect(pg_server, name)
        try:
            yield connection
        finally:
            connection.close()


@pytest.mark.parametrize("change", list(CHANGES))
def test_running_the_undo_sql_restores_the_schema(conn: Any, change: str) -> None:
    cur = conn.cursor()
    cur.execute("DROP SCHEMA IF EXISTS extra CASCADE; DROP SCHEMA public CASCADE; "
                "CREATE SCHEMA public;")
    cur.execute(BASE)
    before = snapshot(cur)
    cur.execute(CHANGES[change])
    found = diff(before, snapshot(cur))
    assert found.differences
    sql = statements(found.items)
    assert sql, found.differences
    for statement in sql:
        cur.execute(statement)
    assert diff(before, snapshot(cur)).differences == (), sql


@pytest.fixture
def own_bases(pg_server: Server) -> Iterator[None]:
    """The bases a test's runs cache are dropped after it: the example's full run caches the
    14 migrations of Django's own apps, which other tests' bases would grow from."""
    from tests.conftest import _our_databases, settle

    before = _our_databases(pg_server)
    yield
    settle(pg_server)
    for name in sorted(_our_databases(pg_server) - before):
        throwaway.drop_database(pg_server, name)


@pytest.mark.usefixtures("own_bases")
def test_a_passing_full_run_of_the_example_is_short_and_the_json_has_every_finding(
        shop: Path, pg_url: str) -> None:
    text = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url)
    assert text.returncode == 0, text.stderr
    lines = (text.stderr + text.stdout).splitlines()
    assert len(lines) <= 25, "\n".join(lines)
    assert not any(line.lstrip().startswith(("statement:", "hint:")) for line in lines)
    said = [line for line in text.stdout.splitlines() if line.startswith("warning: ")]
    folded = [line for line in said if "more finding(s) that do not fail the run" in line]
    full = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url, "--format",
                     "json")
    found = full.report["findings"]
    assert len(found) == 7 and all(f["statement"] and f["hint"] for f in found)
    assert len(said) - len(folded) == 5 and folded == [
        "warning: 2 more finding(s) that do not fail the run (-v shows each with its statement "
        "and hint; so does --format json)"]
    # The longest blocks first.
    seconds = [float(line.split(" s): ")[0].rsplit(", ", 1)[1]) for line in said[:5]]
    assert seconds == sorted(seconds, reverse=True)
    verbose = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url, "-v")
    assert sum(1 for line in verbose.stdout.splitlines()
               if line.startswith("  statement:")) == 7
