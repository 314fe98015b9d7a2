"""The README documents every option of the command and every configuration key."""

from __future__ import annotations

import argparse

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
