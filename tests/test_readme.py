"""The README documents every option of the command and every configuration key."""

from __future__ import annotations

import argparse
import re

from guard.config import KNOWN_KEYS
from guard.main import build_parser
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps sub-commands nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_check_option_is_documented() -> None:
    check = _subparsers(build_parser())["check"]
    options = [o for a in check._actions for o in a.option_strings if o != "-h" and o != "--help"]
    assert "--full" in options
    missing = [o for o in options if f"`{o}" not in README]
    assert not missing


def test_every_config_key_is_documented() -> None:
    missing = [key for key in sorted(KNOWN_KEYS) if f"\n{key} = " not in README]
    assert not missing


def test_the_setup_commands_are_the_ones_ci_runs() -> None:
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    assert "python3 -m pytest" in README and "-m pytest\n" in ci


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])]


def test_the_faults_table_names_real_tests_and_every_bad_input_test() -> None:
    section = README.split("\n## Faults and bad input\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert _cells(lines[0]) == ["fault or input", "what happens", "exit", "test"]
    named: set[tuple[str, str]] = set()
    for line in lines[2:]:
        fault, happens, code, test = _cells(line)
        assert fault and happens and code, line
        match = re.fullmatch(r"`(tests/test_\w+\.py)::(test_\w+)`", test)
        assert match, f"not a tests/<file>.py::<test> cell: {line}"
        file, name = match.groups()
        assert f"\ndef {name}(" in (REPO / file).read_text(encoding="utf-8"), f"{file}::{name}"
        named.add((file, name))
    wanted = [*sorted((REPO / "tests").glob("test_bad_input*.py")),
              REPO / "tests/test_reliability.py"]
    missing = [
        f"tests/{path.name}::{name}"
        for path in wanted
        for name in re.findall(r"^def (test_\w+)\(", path.read_text(encoding="utf-8"), re.M)
        if (f"tests/{path.name}", name) not in named
    ]
    assert not missing
