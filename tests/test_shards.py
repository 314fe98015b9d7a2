"""``--full --shard I/N`` and ``migration-guard report merge``: the full run split into parts that
run on their own, and their reports made one again."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from guard.planning.graph import make_plan
from guard.planning.shards import split
from guard.types import MigrationKey, Selected
from tests.guardrun import Run, run_guard, write
from tests.test_check import LEFTOVER


def _graph(edges: dict[str, list[str]], operations: dict[str, int] | None = None) -> Any:
    """A migration graph in memory: {"app.0002": ["app.0001", ...]}, parents listed."""
    from django.db import migrations
    from django.db.migrations.graph import MigrationGraph

    graph = MigrationGraph()
    nodes = {}
    for name in edges:
        app, _, migration_name = name.partition(".")
        migration = migrations.Migration(migration_name, app)
        migration.operations = [migrations.RunSQL("SELECT 1")] * (operations or {}).get(name, 1)
        nodes[name] = migration
        graph.add_node((app, migration_name), migration)
    for name, parents in edges.items():
        for parent in parents:
            graph.add_dependency(nodes[name], tuple(name.split(".")), tuple(parent.split(".")))
    return graph


def _key(name: str) -> MigrationKey:
    app, _, migration = name.partition(".")
    return app, migration


def _last(names: list[str]) -> dict[MigrationKey, Selected]:
    return {_key(n): Selected(_key(n), "last-N") for n in names}


def test_a_dependent_of_two_shards_is_rolled_back_in_both_and_belongs_to_one() -> None:
    # c.0002 depends on a.0002 and on b.0002: rolling a or b back must roll c.0002 back too.
    graph = _graph({
        "a.0001": [], "a.0002": ["a.0001"],
        "b.0001": [], "b.0002": ["b.0001"],
        "c.0001": [], "c.0002": ["c.0001", "a.0002", "b.0002"],
        "d.0001": [], "d.0002": ["d.0001"],
    }, operations={"a.0002": 6, "b.0002": 5, "d.0002": 4})
    chosen = _last(["a.0002", "b.0002", "d.0002"])
    order = make_plan(graph, chosen).order
    shards = split(graph, chosen, order, 2)
    first, second = shards
    assert [s.index for s in shards] == [1, 2] and {s.count for s in shards} == {2}
    # Largest first: a (with c.0002) to shard 1, b to shard 2 (cheaper than joining a), then d
    # to the cheaper of the two.
    assert first.apps == ("a",) and second.apps == ("b", "d")
    assert _key("c.0002") in make_plan(graph, dict(first.chosen)).order
    assert _key("c.0002") in make_plan(graph, dict(second.chosen)).order
    assert _key("c.0002") in first.owned and _key("c.0002") not in second.owned
    # The parts are disjoint and together the unsharded selection, in its order.
    assert set(first.owned).isdisjoint(second.owned)
    assert sorted(first.owned + second.owned) == sorted(order)
    assert first.everything == second.everything == tuple(order)


def test_an_app_whose_closure_a_shard_holds_already_joins_it() -> None:
    graph = _graph({
        "a.0001": [], "a.0002": ["a.0001"],
        "b.0001": ["a.0002"], "b.0002": ["b.0001"],
        "c.0001": [],
    }, operations={"a.0002": 3})
    chosen = _last(["a.0002", "b.0001", "b.0002", "c.0001"])
    order = make_plan(graph, chosen).order
    one, two, three = split(graph, chosen, order, 3)
    # Rolling a back rolls all of b back: b costs shard 1 nothing more.
    assert one.apps == ("a", "b") and two.apps == ("c",) and three.apps == ()
    assert three.owned == () and "nothing to roll back" in three.describe(5)
    assert sorted(one.owned + two.owned) == sorted(order)


# -- end to end: the shop's three apps -----------------------------------------------------------


def _shard(shop: Path, pg_url: str, spec: str, out: Path, last: int = 1) -> Run:
    return run_guard("check", "--full", "--last", str(last), "--shard", spec, "--project-dir",
                     shop, "--db", pg_url, "--format", f"json={out}")


def _merge(*args: str | Path, cwd: Path | None = None) -> Run:
    return run_guard("report", "merge", *args, cwd=cwd)


@pytest.mark.e2e
@pytest.mark.usefixtures("db_guard")
def test_the_shards_together_are_the_full_run_and_merge_into_its_report(
    shop: Path, pg_url: str, tmp_path: Path
) -> None:
    whole = run_guard("check", "--full", "--last", "1", "--project-dir", shop, "--db", pg_url,
                      "--format", "json", "--format", f"junit={tmp_path / 'whole.xml'}")
    assert whole.returncode == 0, whole.stderr
    reports = []
    for index in (1, 2):
        out = tmp_path / f"shard-{index}.json"
        run = _shard(shop, pg_url, f"{index}/2", out)
        assert run.returncode == 0, run.stderr
        assert f"(full mode, shard {index}/2," in run.stdout
        reports.append(json.loads(out.read_text()))
    first, second = (r["shard"] for r in reports)
    # The largest app to shard 1, the two others to shard 2.
    assert first["apps"] == ["catalog"] and second["apps"] == ["billing", "orders"]
    assert [s["migration"] for s in reports[0]["selected"]] == ["catalog.0003_category"]
    assert first["migrations"] == ["catalog.0003_category"]
    assert second["migrations"] == ["billing.0001_initial", "orders.0002_order_status"]
    unsharded = [s["migration"] for s in whole.report["selected"]]
    assert first["full_run"] == second["full_run"] == unsharded
    assert set(first["migrations"]).isdisjoint(second["migrations"])
    assert sorted(first["migrations"] + second["migrations"]) == sorted(unsharded)
    # Each shard starts from a base of everything it does not roll back.
    assert reports[0]["base"]["migrations"] + 1 == reports[1]["base"]["migrations"] + 2

    junit = tmp_path / "merged.xml"
    merged = _merge(tmp_path / "shard-2.json", tmp_path / "shard-1.json", "--format", "json",
                    "--format", f"junit={junit}")
    assert merged.returncode == 0, merged.stderr
    assert merged.selection() == whole.selection()
    assert merged.report["passed"] is True and merged.report["shard"] is None
    assert merged.report["merged_shards"] == 2
    for result in merged.report["results"]:
        assert [s["step"] for s in result["steps"]] == ["forward", "backward", "forward-again"]
        assert all(s["ok"] for s in result["steps"])
    assert "shard 1/2" in merged.stderr and "shard 2/2" in merged.stderr
    # The same test cases as the unsharded run's: every step, finding and check.
    assert _cases(junit) == _cases(tmp_path / "whole.xml")
    assert ("orders.0002_order_status", "forward-again", None) in _cases(junit)


def _cases(junit: Path) -> set[tuple[str | None, str | None, str | None]]:
    """(class, name, failure message) of every test case."""
    found = set()
    for case in ET.parse(junit).getroot().iter("testcase"):
        failure = case.find("failure")
        found.add((case.get("classname"), case.get("name"),
                   None if failure is None else failure.get("message")))
    return found


@pytest.mark.e2e
@pytest.mark.usefixtures("db_guard")
def test_merge_fails_when_a_shard_failed_and_says_what_failed(
    shop: Path, pg_url: str, tmp_path: Path
) -> None:
    write(shop / "orders/migrations/0003_leftover.py", LEFTOVER)
    runs = [_shard(shop, pg_url, f"{i}/2", tmp_path / f"{i}.json", last=2) for i in (1, 2)]
    # Rolling catalog's last 2 back rolls back every other app's last 2 too: shard 1 takes them
    # all, shard 2 has nothing to roll back; it applies every migration and runs the checks.
    assert [r.returncode for r in runs] == [1, 0], runs[1].stderr
    assert "shard 2/2: nothing to roll back" in runs[1].stderr
    assert json.loads((tmp_path / "2.json").read_text())["shard"]["migrations"] == []
    summary = tmp_path / "summary.md"
    sarif = tmp_path / "merged.sarif"
    merged = run_guard("report", "merge", tmp_path / "1.json", tmp_path / "2.json",
                       "--format", "text", "--format", f"sarif={sarif}",
                       env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
                            "GITHUB_WORKSPACE": str(shop)}, cwd=shop)
    assert merged.returncode == 1, merged.stderr
    # Every format, as check writes it: SARIF's errors are the leftover's two failed steps.
    errors = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
              for r in json.loads(sarif.read_text())["runs"][0]["results"]
              if r["level"] == "error"}
    assert errors == {("schema-difference", "orders/migrations/0003_leftover.py"),
                      ("failed-step", "orders/migrations/0003_leftover.py")}
    assert "FAILED orders.0003_leftover: backward:" in merged.stdout
    # Under GitHub Actions the merge annotates the migration file and writes the step summary,
    # as a check does (the shards ran with --no-github in the example workflow).
    assert any(line.startswith("::error file=orders/migrations/0003_leftover.py,line=")
               and "orders.0003_leftover backward" in line for line in merged.stdout.splitlines())
    text = summary.read_text()
    assert text.startswith("### migration-guard FAILED\n")
    assert "| `orders.0003_leftover` | ✅ ok | ❌ failed | ❌ failed |" in text
    # As in the unsharded run: what its reverse leaves is its fault alone; the rollbacks after
    # it are compared with it (see tests/test_jobs.py).
    [summary_line] = [line for line in merged.stdout.splitlines()
                      if line.startswith("migration-guard ")]  # the annotations come after it
    assert summary_line.startswith(
        "migration-guard FAILED: 5 of 6 migration(s) passed, 1 failed (full mode, 2 shards merged")


@pytest.mark.e2e
@pytest.mark.usefixtures("db_guard")
def test_merge_refuses_reports_that_do_not_make_one_full_run(
    shop: Path, pg_url: str, tmp_path: Path
) -> None:
    for spec, name in (("1/2", "a"), ("2/2", "b")):
        assert _shard(shop, pg_url, spec, tmp_path / f"{name}.json").returncode == 0
    other = _shard(shop, pg_url, "2/2", tmp_path / "other.json", last=2)
    assert other.returncode == 0, other.stderr
    plain = run_guard("check", "--full", "--project-dir", shop, "--db", pg_url,
                      "--format", f"json={tmp_path / 'plain.json'}")
    assert plain.returncode == 0, plain.stderr
    (tmp_path / "broken.json").write_text("{not json")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    cases = {
        (a,): "Shard(s) 2 of 2 missing",
        (a, b, a): "are both shard 1/2: two reports overlap",
        (a, tmp_path / "other.json"): "come from different histories",
        (a, tmp_path / "plain.json"): "is not a shard's report",
        (a, tmp_path / "broken.json"): "is not a JSON report",
        (a, tmp_path / "gone.json"): "Cannot read the report",
    }
    for files, message in cases.items():
        run = _merge(*files)
        assert run.returncode == 2, (files, run.stderr)
        assert message in run.stderr and "Traceback" not in run.stderr, run.stderr
        assert run.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (("--full", "--shard", "3/2"), "--shard 3/2: expected I/N"),
    (("--full", "--shard", "two"), "--shard two: expected I/N"),
    (("--full", "--shard", "0/4"), "--shard 0/4: expected I/N"),
    (("--shard", "1/2"), "--shard 1/2 splits the full run: add --full"),
])
def test_a_wrong_shard_is_a_usage_error(shop: Path, args: tuple[str, ...], message: str
                                        ) -> None:
    run = run_guard("check", *args, "--project-dir", shop, "--db", "postgresql://nowhere:1/x")
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
