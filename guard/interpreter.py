"""Which Python runs the project, and running the Django side there.

pre-commit runs hooks in a virtualenv of its own, which lacks the project's dependencies (its
third-party apps, its database driver). The Django side therefore runs in the project's own
interpreter, found in this order: ``python`` in ``[tool.migration-guard]``; an activated
virtualenv (``VIRTUAL_ENV``, which pre-commit overwrites, so also the virtualenvs on ``PATH``);
an activated conda environment (``CONDA_PREFIX``); ``.venv``, ``venv``, ``env``, ``.virtualenv``
in the project folder or the repository root; Poetry's and Pipenv's environments; else this one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from guard import timings
from guard.config import CheckOptions
from guard.errors import FatalError
from guard.wire import worker_environment, worker_request

if TYPE_CHECKING:
    from guard import ahead

VENV_NAMES = (".venv", "venv", "env", ".virtualenv", "virtualenv")


@dataclass(frozen=True)
class Interpreter:
    python: str
    how: str

    @property
    def is_current(self) -> bool:
        return _prefix_of(self.python) == Path(sys.prefix).resolve()


def _python_in(prefix: Path) -> Path | None:
    for candidate in (prefix / "bin" / "python", prefix / "Scripts" / "python.exe",
                      prefix / "bin" / "python3"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _is_environment(prefix: Path) -> bool:
    return (prefix / "pyvenv.cfg").is_file() or (prefix / "conda-meta").is_dir()


def _prefix_of(python: str) -> Path:
    """The environment a python executable belongs to (its folder's parent for a venv)."""
    path = Path(python)
    folder = path.parent.absolute()
    if _is_environment(folder.parent):
        return folder.parent.resolve()
    return folder.resolve()


def under_pre_commit(environ: Mapping[str, str]) -> bool:
    """True when pre-commit runs us in its own hook environment."""
    return environ.get("PRE_COMMIT") == "1" or "py_env-" in sys.prefix


def _candidates(
    project_dir: Path, repo_root: Path | None, environ: Mapping[str, str]
) -> Iterator[tuple[Path, str]]:
    own = Path(sys.prefix).resolve()
    skip_own = under_pre_commit(environ)
    virtual_env = environ.get("VIRTUAL_ENV")
    if virtual_env:
        yield Path(virtual_env), "the activated virtualenv (VIRTUAL_ENV)"
    for entry in environ.get("PATH", "").split(os.pathsep):
        if not entry:
            continue
        prefix = Path(entry).parent
        if _is_environment(prefix):
            if skip_own and prefix.resolve() == own:
                continue  # pre-commit's own hook environment, which it puts first on PATH
            yield prefix, f"the activated virtualenv on PATH ({entry})"
    conda = environ.get("CONDA_PREFIX")
    if conda:
        yield Path(conda), "the activated conda environment (CONDA_PREFIX)"
    folders = [project_dir] + ([repo_root] if repo_root and repo_root != project_dir else [])
    for folder in folders:
        for name in VENV_NAMES:
            yield folder / name, f"{name} in {folder}"


def _tool_environment(command: list[str], cwd: Path) -> Path | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.strip().splitlines()
    return Path(text[-1]) if done.returncode == 0 and text else None


def find(
    project_dir: Path,
    *,
    configured: str | None,
    repo_root: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Interpreter:
    """The project's interpreter, and one line on why."""
    environ = os.environ if environ is None else environ
    if configured:
        found = shutil.which(configured) if os.sep not in configured else configured
        if not found or not Path(found).is_file():
            raise FatalError(
                f"[tool.migration-guard] python = {configured!r}: no such interpreter. Point it "
                "at the project's Python, e.g. \".venv/bin/python\" (relative to pyproject.toml)."
            )
        return Interpreter(found, "[tool.migration-guard] python")
    own = Path(sys.prefix).resolve()
    skip_own = under_pre_commit(environ)
    for prefix, how in _candidates(project_dir, repo_root, environ):
        if not _is_environment(prefix):
            continue
        if skip_own and prefix.resolve() == own:
            continue
        python = _python_in(prefix)
        if python is not None:
            return Interpreter(str(python), how)
    for marker, command in (("poetry.lock", ["poetry", "env", "info", "--path"]),
                            ("Pipfile", ["pipenv", "--venv"])):
        if (project_dir / marker).is_file():
            tool_prefix = _tool_environment(command, project_dir)
            python = _python_in(tool_prefix) if tool_prefix else None
            if python is not None:
                return Interpreter(str(python), f"{command[0]}'s environment")
    return Interpreter(sys.executable, "the interpreter running migration-guard")


class _Forward:
    """While the child runs, Ctrl-C and SIGTERM are passed on to it, exactly once.

    The child has a session of its own, so a Ctrl-C in the terminal reaches only us."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.child.poll() is None:
            self.child.send_signal(signum)


def run_worker(interpreter: Interpreter, request: bytes) -> int:
    """Run the Django side in ``interpreter`` with ``request`` (:func:`worker_request`); its
    exit code."""
    env = worker_environment()
    try:
        child = subprocess.Popen(
            [interpreter.python, "-m", "guard.worker"],
            stdin=subprocess.PIPE, env=env, start_new_session=True,
        )
    except OSError as exc:
        raise FatalError(
            f"Cannot run the project's Python {interpreter.python} ({interpreter.how}): {exc}."
        ) from exc
    forward = _Forward(child)
    previous_int = signal.signal(signal.SIGINT, forward)
    previous_term = signal.signal(signal.SIGTERM, forward)
    try:
        assert child.stdin is not None
        try:
            child.stdin.write(request)
            child.stdin.close()
        except BrokenPipeError:
            pass
        code = child.wait()
        return 128 - code if code < 0 else code
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def start_ahead(options: CheckOptions, *, repo_root: Path | None = None) -> ahead.Ahead | None:
    """The Django side for ``options``, started before git has said what to test (None where
    it cannot be)."""
    from guard import ahead

    found = find(options.project_dir, configured=options.python, repo_root=repo_root)
    return ahead.start(options, found.python, current=found.is_current,
                       note=f"running Django in {found.python} ({found.how})")


def run_django_side(
    options: CheckOptions, *, repo_root: Path | None = None, fresh_process: bool = False
) -> int:
    """Run the check in the project's interpreter: in this process when it is this one.

    Django starts once per process: ``fresh_process`` runs even this interpreter in a worker,
    for the second and later trees of one push."""
    found = find(options.project_dir, configured=options.python, repo_root=repo_root)
    if found.is_current and not fresh_process:
        with timings.phase("imports", "the Django side of migration-guard"):
            from guard.check import run_check

        return run_check(options)
    if not found.is_current:
        print(f"migration-guard: running Django in {found.python} ({found.how})",
              file=sys.stderr, flush=True)
    return run_worker(found, worker_request(dataclasses.replace(options,
                                                                clock=timings.exported())))
