"""The GitHub Actions workflows: the project's own CI (.github/workflows/) and the ready-to-copy
ones for users (docs/workflows/). No database: the files are parsed, never run.

Each is checked for the hardening it promises (actions pinned to a commit SHA, read-only
permissions, no persisted credentials, marked test passwords, health-checked PostgreSQL
services), and every ``migration-guard`` and ``pre-commit run`` command in it is parsed against
the real command line and hook list, so a renamed option cannot leave an example behind.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.main import build_parser
from tests.conftest import REPO

PROJECT_WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.y*ml"))
DOCS_WORKFLOWS = sorted((REPO / "docs/workflows").glob("*.y*ml"))
WORKFLOWS = PROJECT_WORKFLOWS + DOCS_WORKFLOWS
MAIN = REPO / ".github/workflows/main.yml"
SHA_PIN = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
SECRET_PRAGMA = "# pragma: allowlist secret"
# A password: a ...PASSWORD key, or the user:password@ part of a URL.
PASSWORD = re.compile(r"password\s*:|://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)

# Django's supported Pythons and minimum PostgreSQL (its backend's minimum_database_version).
DJANGO_PYTHONS = {
    "4.2": {"3.10", "3.11", "3.12"},
    "5.2": {"3.10", "3.11", "3.12", "3.13"},
    "6.x": {"3.12", "3.13"},
}
DJANGO_MIN_POSTGRES = {"4.2": 12, "5.2": 14, "6.x": 15}


@pytest.fixture
def _drop_caches_made_by_the_session() -> None:
    """Overrides the suite's autouse session fixture, which needs a PostgreSQL server: these
    tests read files only, so ``pytest tests/test_workflows.py`` runs without one."""


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), _rel(path)
    return document


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """``on:``, which YAML 1.1 (PyYAML) reads as the boolean key True."""
    triggers = workflow.get("on", workflow.get(True))
    assert isinstance(triggers, dict), "on: should be a mapping of events"
    return triggers


def _jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    jobs = workflow.get("jobs")
    assert isinstance(jobs, dict) and jobs
    return jobs


def _steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, job in _jobs(workflow).items():
        for step in job.get("steps", []):
            yield name, step


def _shell_commands(script: str) -> Iterator[list[str]]:
    """The simple commands of a ``run:`` script, as words (leading VAR=value assignments off)."""
    script = script.replace("\\\n", " ")
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set("&|;()"):
                while command and re.fullmatch(r"\w+=.*", command[0]):
                    command.pop(0)
                if command:
                    yield command
                command = []
            else:
                command.append(token)


def _run_commands(workflow: dict[str, Any], job: str | None = None) -> Iterator[list[str]]:
    for name, step in _steps(workflow):
        if "run" in step and job in (None, name):
            yield from _shell_commands(step["run"])


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps sub-commands nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _guard_arguments(command: list[str]) -> list[str] | None:
    """The arguments of a migration-guard command (also ``python -m guard``), else None."""
    program = Path(command[0]).name
    if program == "migration-guard":
        return command[1:]
    if re.fullmatch(r"python[\d.]*", program) and command[1:3] == ["-m", "guard"]:
        return command[3:]
    return None


def _pre_commit_run(command: list[str]) -> list[str] | None:
    """The arguments after ``pre-commit run`` (also ``python -m pre_commit run``), else None."""
    program = Path(command[0]).name
    if program == "pre-commit" and command[1:2] == ["run"]:
        return command[2:]
    if re.fullmatch(r"python[\d.]*", program) and command[1:4] == ["-m", "pre_commit", "run"]:
        return command[4:]
    return None


PRE_COMMIT_RUN_VALUES = ("--hook-stage", "--from-ref", "--to-ref", "--source", "--origin",
                         "--remote-branch", "--local-branch", "--config", "-c")


def _pre_commit_options(arguments: list[str]) -> tuple[dict[str, str], list[str]]:
    """``pre-commit run``'s options that take a value, and its positional words (the hook)."""
    options: dict[str, str] = {}
    positional: list[str] = []
    words = iter(arguments)
    for word in words:
        name, equals, value = word.partition("=")
        if name in PRE_COMMIT_RUN_VALUES:
            options[name] = value if equals else next(words, "")
        elif word == "--files":
            break  # file names to the end
        elif not word.startswith("-"):
            positional.append(word)
    return options, positional


def _option_problems(arguments: list[str]) -> list[str]:
    """What is wrong with a migration-guard command line: unknown options, or argparse's error."""
    parser = build_parser()
    commands = _subparsers(parser)
    if not arguments or arguments[0] not in commands:
        return [f"no such sub-command in {arguments}: choose from {sorted(commands)}"]
    command, depth = commands[arguments[0]], 1
    while _subparsers(command) and arguments[depth:depth + 1] and \
            arguments[depth] in _subparsers(command):  # report merge ...
        command, depth = _subparsers(command)[arguments[depth]], depth + 1
    known = {o for a in command._actions for o in a.option_strings}
    problems = [
        f"{' '.join(arguments[:depth])}: no option {word.split('=')[0]}"
        for word in arguments[depth:]
        if word.startswith("-") and word != "-" and word.split("=")[0] not in known
    ]
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.suppress(SystemExit):
        parser.parse_args(arguments)
        return problems
    return [*problems, errors.getvalue().strip()]


def _hooks() -> dict[str, dict[str, Any]]:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    return {hook["id"]: hook for hook in hooks}


def _expand_matrix(matrix: dict[str, Any]) -> list[dict[str, Any]]:
    """A strategy matrix's jobs, as GitHub expands them: the product of the lists, less the
    combinations an ``exclude`` entry matches, then each ``include`` entry added to every
    combination whose original values it does not change, or as a job of its own."""
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    combinations = [
        dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())
    ]
    combinations = [
        c for c in combinations
        if not any(all(c.get(k) == v for k, v in e.items()) for e in matrix.get("exclude", []))
    ]
    originals = [dict(c) for c in combinations]
    extra = []
    for entry in matrix.get("include", []):
        matched = False
        for combination, original in zip(combinations, originals, strict=True):
            if all(original.get(k, v) == v for k, v in entry.items()):
                combination.update(entry)
                matched = True
        if not matched:
            extra.append(dict(entry))
    return combinations + extra


# -- every workflow -----------------------------------------------------------------------------

def test_the_workflows_are_there() -> None:
    assert MAIN in PROJECT_WORKFLOWS
    assert {p.name for p in DOCS_WORKFLOWS} >= {
        "migration-tests.yml", "migration-tests-pre-commit.yml", "all-checks.yml",
        "migration-tests-sharded.yml", "migration-code-scanning.yml", "migration-pr-comment.yml",
    }


@pytest.fixture(params=WORKFLOWS, ids=_rel)
def workflow_path(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_parses_as_a_workflow(workflow_path: Path) -> None:
    workflow = _load(workflow_path)
    assert workflow.get("name")
    assert _triggers(workflow)
    for name, job in _jobs(workflow).items():
        assert job.get("runs-on"), name
        assert job.get("steps"), name
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: no timeout-minutes"


def test_every_action_is_pinned_to_a_commit(workflow_path: Path) -> None:
    workflow = _load(workflow_path)
    raw = workflow_path.read_text(encoding="utf-8")
    used = [step["uses"] for _, step in _steps(workflow) if "uses" in step]
    assert used
    for uses in used:
        assert SHA_PIN.fullmatch(uses), f"not pinned to a 40-hex commit: {uses}"
        # and the release it is, for people and for Dependabot
        assert re.search(rf"uses: {re.escape(uses)}\s+# v\d", raw), f"no '# vX' comment: {uses}"


WRITES = {"migration-code-scanning.yml": {"security-events": "write"},
          "migration-pr-comment.yml": {"pull-requests": "write"}}
"""The one write permission a job of these workflows needs (the upload, the comment)."""


def test_permissions_are_read_only(workflow_path: Path) -> None:
    workflow = _load(workflow_path)
    assert workflow.get("permissions") == {"contents": "read"}
    wanted = {"contents": "read", **WRITES.get(workflow_path.name, {})}
    for name, job in _jobs(workflow).items():
        assert job.get("permissions", {"contents": "read"}) in ({"contents": "read"}, wanted), name
    if workflow_path.name in WRITES:
        assert any(job.get("permissions") == wanted for job in _jobs(workflow).values())


def test_checkout_does_not_persist_credentials(workflow_path: Path) -> None:
    checkouts = [
        step for _, step in _steps(_load(workflow_path))
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False


def test_postgres_services_are_health_checked(workflow_path: Path) -> None:
    for name, job in _jobs(_load(workflow_path)).items():
        for service in job.get("services", {}).values():
            if not str(service.get("image", "")).startswith("postgres:"):
                continue
            options = " ".join(str(service.get("options", "")).split())
            assert "--health-cmd pg_isready" in options, name
            for flag in ("--health-interval", "--health-timeout", "--health-retries"):
                assert flag in options, f"{name}: {flag}"
            assert "5432:5432" in [str(p) for p in service.get("ports", [])], name
            assert service.get("env", {}).get("POSTGRES_PASSWORD"), name


def test_every_password_is_marked_for_secret_scanners(workflow_path: Path) -> None:
    lines = workflow_path.read_text(encoding="utf-8").splitlines()
    code = [(n, line) for n, line in enumerate(lines, 1) if not line.lstrip().startswith("#")]
    with_password = [(n, line) for n, line in code if PASSWORD.search(line)]
    assert with_password, "expected the test server's credentials"
    unmarked = [f"line {n}: {line.strip()}" for n, line in with_password
                if SECRET_PRAGMA not in line]
    assert not unmarked


def test_migration_guard_commands_use_real_options(workflow_path: Path) -> None:
    for command in _run_commands(_load(workflow_path)):
        arguments = _guard_arguments(command)
        if arguments is not None:
            assert not _option_problems(arguments), " ".join(command)


def test_pre_commit_runs_name_a_real_hook(workflow_path: Path) -> None:
    hooks = _hooks()
    for command in _run_commands(_load(workflow_path)):
        arguments = _pre_commit_run(command)
        if arguments is None:
            continue
        options, positional = _pre_commit_options(arguments)
        assert positional, f"runs every hook, not migration-guard: {' '.join(command)}"
        hook = hooks.get(positional[0])
        assert hook, f"no hook {positional[0]!r} in .pre-commit-hooks.yaml"
        stage = options.get("--hook-stage", "pre-commit")  # pre-commit run's default
        assert stage in hook["stages"], f"{hook['id']} is not in stage {stage}"


def test_all_checks_needs_every_job_and_fails_unless_each_succeeded(workflow_path: Path) -> None:
    jobs = _jobs(_load(workflow_path))
    if "all-checks" not in jobs:
        assert workflow_path.name not in ("main.yml", "all-checks.yml")
        return
    gate = jobs["all-checks"]
    assert "always()" in str(gate.get("if"))
    assert set(gate["needs"]) == set(jobs) - {"all-checks"}
    (step,) = gate["steps"]
    assert step["env"]["NEEDS"] == "${{ toJSON(needs) }}"
    assert "${{" not in step["run"], "job outputs go through the environment, not the script"
    assert 'result == "success"' in step["run"] and "jq -e" in step["run"]
    assert "uses" not in step


# -- the commands and the parser ------------------------------------------------------------------

def test_the_command_check_catches_unknown_options() -> None:
    assert not _option_problems(["check", "--full", "--last", "3", "--mode", "full"])
    assert not _option_problems(["check", "--db=local", "-v", "app/migrations/0002_x.py"])
    assert _option_problems(["check", "--fulll"])[0] == "check: no option --fulll"
    assert _option_problems(["check", "--mode", "sometimes"])  # a value argparse refuses
    assert _option_problems(["verify"])
    assert _option_problems(["clean", "--full"])
    assert not _option_problems(["report", "merge", "a.json", "--format", "junit=r.xml"])
    assert _option_problems(["report", "merge", "a.json", "--full"])[0] == \
        "report merge: no option --full"


def test_shell_commands_are_split_like_a_shell() -> None:
    script = (
        "python -m venv .venv && .venv/bin/pip install -r requirements.txt  # deps\n"
        "CI=true migration-guard check \\\n  --full --last 3; echo done\n"
        "pre-commit run migration-guard --all-files | tee log\n"
    )
    assert list(_shell_commands(script)) == [
        ["python", "-m", "venv", ".venv"],
        [".venv/bin/pip", "install", "-r", "requirements.txt"],
        ["migration-guard", "check", "--full", "--last", "3"],
        ["echo", "done"],
        ["pre-commit", "run", "migration-guard", "--all-files"],
        ["tee", "log"],
    ]
    assert _guard_arguments(["python3.12", "-m", "guard", "check"]) == ["check"]
    assert _pre_commit_options(["--hook-stage", "pre-push", "migration-guard", "-a"]) == (
        {"--hook-stage": "pre-push"}, ["migration-guard"]
    )
    assert _pre_commit_options(["--hook-stage=manual", "migration-guard"]) == (
        {"--hook-stage": "manual"}, ["migration-guard"]
    )
    assert _guard_arguments(["pip", "install", "migration-guard"]) is None


def test_the_docs_workflows_run_migration_guard() -> None:
    guard_runs = {
        path.name: [a for c in _run_commands(_load(path)) if (a := _guard_arguments(c))]
        for path in DOCS_WORKFLOWS
    }
    assert ["check", "--full", "--cache-dir", ".migration-guard-cache"] in \
        guard_runs["migration-tests.yml"]
    assert ["check", "--full"] in guard_runs["all-checks.yml"]
    assert guard_runs["migration-tests-sharded.yml"] == [
        ["check", "--full", "--shard", "$SHARD/$SHARDS", "--cache-dir", ".migration-guard-cache",
         "--format", "json=migration-report-$SHARD.json", "--no-github"],
        ["report", "merge", "reports/*.json", "--format", "junit=migration-report.xml"],
    ]
    assert guard_runs["migration-code-scanning.yml"] == [
        ["check", "--full", "--cache-dir", ".migration-guard-cache",
         "--format", "sarif=migration-guard.sarif"]]
    assert guard_runs["migration-pr-comment.yml"] == [
        ["check", "--full", "--cache-dir", ".migration-guard-cache",
         "--format", "markdown=migration-comment.md"]]
    pre_commit = [
        a for c in _run_commands(_load(REPO / "docs/workflows/migration-tests-pre-commit.yml"))
        if (a := _pre_commit_run(c))
    ]
    assert pre_commit == [["migration-guard", "--all-files"]]


def test_the_sharded_workflow_runs_every_shard_and_merges_them() -> None:
    jobs = _jobs(_load(REPO / "docs/workflows/migration-tests-sharded.yml"))
    shards = jobs["migrations"]
    matrix = _expand_matrix(shards["strategy"]["matrix"])
    assert [job["shard"] for job in matrix] == list(range(1, shards["env"]["SHARDS"] + 1))
    assert shards["strategy"]["fail-fast"] is False  # a failed shard must not cancel the others
    assert shards["env"]["SHARD"] == "${{ matrix.shard }}"
    steps = {step.get("uses", "").split("@")[0]: step for step in shards["steps"]}
    assert "${{ matrix.shard }}" in steps["actions/cache"]["with"]["key"]
    upload = steps["actions/upload-artifact"]
    assert upload["if"] == "always()" and upload["with"]["path"] == \
        "migration-report-${{ matrix.shard }}.json"
    merge = jobs["report"]
    assert merge["needs"] == ["migrations"] and "always()" in merge["if"]
    download = next(s for s in merge["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["pattern"] == "migration-report-*"
    assert download["with"]["merge-multiple"] is True and download["with"]["path"] == "reports"


@pytest.mark.parametrize("path", DOCS_WORKFLOWS, ids=_rel)
def test_docs_workflows_run_on_main_and_develop(path: Path) -> None:
    triggers = _triggers(_load(path))
    # A pull request comment has no pull request to go to on a push.
    events = {"pull_request"} if path.name == "migration-pr-comment.yml" else {
        "push", "pull_request"}
    assert set(triggers) == events
    for event in events:
        assert set(triggers[event]["branches"]) == {"main", "develop"}, event


@pytest.mark.parametrize("path", DOCS_WORKFLOWS, ids=_rel)
def test_docs_workflows_explain_themselves(path: Path) -> None:
    header = path.read_text(encoding="utf-8").split("\nname:", 1)[0]
    assert header.count("\n# ") >= 5 and "adapt" in header.lower()
    assert path.name in (REPO / "docs/workflows/README.md").read_text(encoding="utf-8")


# -- the project's own CI -----------------------------------------------------------------------

def _tests_matrix() -> list[dict[str, Any]]:
    return _expand_matrix(_jobs(_load(MAIN))["tests"]["strategy"]["matrix"])


def test_matrix_expansion_follows_github() -> None:
    matrix = {
        "a": [1, 2], "b": ["x"],
        "exclude": [{"a": 2}],
        "include": [{"a": 1, "b": "x", "c": True}, {"a": 1, "b": "y"}],
    }
    assert _expand_matrix(matrix) == [{"a": 1, "b": "x", "c": True}, {"a": 1, "b": "y"}]


def test_main_matrix_pairs_are_valid() -> None:
    jobs = _tests_matrix()
    for job in jobs:
        python, django, postgres = job["python"], job["django"], int(job["postgres"])
        assert python in DJANGO_PYTHONS[django], f"Django {django} does not run on {python}"
        assert postgres >= DJANGO_MIN_POSTGRES[django], f"Django {django} on PostgreSQL {postgres}"
    pairs = [(job["python"], job["django"], job["postgres"]) for job in jobs]
    assert len(pairs) == len(set(pairs)), "a leg twice"


def test_main_matrix_covers_every_pair_and_postgres_version() -> None:
    jobs = _tests_matrix()
    on_15 = {(job["python"], job["django"]) for job in jobs if job["postgres"] == "15"}
    assert on_15 == {(p, d) for d, pythons in DJANGO_PYTHONS.items() for p in pythons}
    assert {job["postgres"] for job in jobs} == {"13", "15", "17"}
    assert len(jobs) <= 12, "keep the matrix reasonable"
    assert "embedded" in {e for job in jobs for e in job.get("extras", "test").split(",")}


def test_main_tests_job_uses_the_matrix_and_the_service() -> None:
    job = _jobs(_load(MAIN))["tests"]
    assert job["services"]["postgres"]["image"] == "postgres:${{ matrix.postgres }}"
    url = job["env"]["MIGRATION_GUARD_TEST_DATABASE_URL"]
    assert url == "postgres://postgres:postgres@127.0.0.1:5432/postgres"  # pragma: allowlist secret
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert any("apt-get install -y -qq postgresql" in run for run in runs)
    commands = [c for run in runs for c in _shell_commands(run)]
    pytest_command = ["python", "-m", "pytest"]
    assert [c for c in commands if c[:3] == pytest_command] == [pytest_command]
    (install,) = [s for s in job["steps"] if "pip install" in s.get("run", "")]
    assert install["env"]["DJANGO"] == "${{ matrix.django }}"


def test_main_lint_job_runs_what_ci_run_lints() -> None:
    ci_run = (REPO / ".ci/run").read_text(encoding="utf-8")
    lint = list(_run_commands(_load(MAIN), job="lint"))
    assert ["ruff", "check", "guard", "tests"] in lint and "ruff check guard tests" in ci_run
    assert ["mypy"] in lint and "bin/mypy\n" in ci_run


def test_the_code_scanning_upload_and_the_comment_run_even_when_the_check_fails() -> None:
    for name, uses in (("migration-code-scanning.yml", "github/codeql-action/upload-sarif@"),
                       ("migration-pr-comment.yml", None)):
        steps = [step for _, step in _steps(_load(REPO / "docs/workflows" / name))]
        check = next(s for s in steps if s.get("id") == "check")
        assert check["continue-on-error"] is True
        after = steps[steps.index(check) + 1]
        assert after["if"].startswith("always()")
        if uses:
            assert after["uses"].startswith(uses)
            assert after["with"]["sarif_file"] == "migration-guard.sarif"
        else:
            assert "<!-- migration-guard -->" in after["run"]
        assert steps[-1]["if"] == "steps.check.outcome == 'failure'"


def test_the_gitlab_job_reports_code_quality_and_junit() -> None:
    gitlab = _load(REPO / "docs/workflows/gitlab/.gitlab-ci.yml")
    job = gitlab["migration-tests"]
    assert job["artifacts"]["reports"] == {"codequality": "gl-code-quality-report.json",
                                           "junit": "migration-report.xml"}
    assert job["artifacts"]["when"] == "always"
    check = build_parser()
    commands = [c for line in job["script"] for c in _shell_commands(line)
                if _guard_arguments(c)]
    assert [_guard_arguments(c) for c in commands] == [[
        "check", "--full", "--cache-dir", ".migration-guard-cache",
        "--format", "gitlab=gl-code-quality-report.json", "--format",
        "junit=migration-report.xml"]]
    check.parse_args(_guard_arguments(commands[0]))
