"""The git side of selection: which migration files a run tests, decided from git.

- **push mode**: the range being pushed (pre-commit's ``PRE_COMMIT_FROM_REF``/``TO_REF``, or the
  lines git gives a plain pre-push hook). The code tested is the pushed commit, exported into a
  temporary folder when it is not what the working tree holds.
- **branch mode**: the merge-base of HEAD with the target branch against the working tree,
  staged, unstaged and untracked changes included.
- **full mode**: in CI, or when no base can be found; one line says why.

A modified migration whose code is unchanged in meaning (comments, formatting, docstrings,
annotations) is not selected; such files are listed. Only this part of the package
(``guard.selection``: this module, ``git``, ``base`` and ``push``) knows git.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from guard.config import CheckOptions
from guard.errors import FatalError
from guard.planning import semantic
from guard.selection import base as target
from guard.selection import git, push

CI_VARIABLES = (
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "JENKINS_URL",
    "TF_BUILD",
    "TRAVIS",
    "BITBUCKET_BUILD_NUMBER",
    "TEAMCITY_VERSION",
    "DRONE",
    "CODEBUILD_BUILD_ID",
)
"""Environment variables that mean a CI run (unless set to false, 0, no or off)."""


@dataclass(frozen=True)
class Run:
    options: CheckOptions
    commit: str | None = None
    """The pushed commit whose code is tested; None for the working tree."""


@dataclass(frozen=True)
class Decision:
    """What to run: one run per tested tree (several refs in one push give several)."""

    runs: tuple[Run, ...]
    message: str = ""
    """Set when there is nothing to run at all (no Python file changed): said, exit 0."""


def _full(options: CheckOptions, why: str) -> CheckOptions:
    return dataclasses.replace(options, full=True, notes=(*options.notes, f"full mode: {why}"))


def _is_python(path: Path) -> bool:
    return path.suffix == ".py"


def _in_migrations_folder(path: Path) -> bool:
    return "migrations" in path.parts[:-1]


def _short(sha: str) -> str:
    return sha[:10]


def _environment_of(path: Path, root: Path, known: dict[Path, Path | None]) -> Path | None:
    """The Python environment (a virtualenv or conda folder in the working tree) that
    ``path`` lies in, or None: its files are installed packages, not the project's."""
    found: Path | None = None
    for folder in path.parents:
        if folder == root or root not in folder.parents:
            break
        if folder not in known:
            known[folder] = folder if ((folder / "pyvenv.cfg").is_file()
                                       or (folder / "conda-meta").is_dir()) else None
        found = known[folder] or found
    return found


def _outside_environments(changes: Sequence[git.Change], root: Path
                          ) -> tuple[list[git.Change], dict[Path, int]]:
    """The changes, but those in Python environments inside the working tree (an untracked
    ``.venv`` that no ``.gitignore`` names); how many were left out of each."""
    known: dict[Path, Path | None] = {}
    kept: list[git.Change] = []
    left: dict[Path, int] = {}
    for change in changes:
        environment = _environment_of(change.path, root, known)
        if environment is None:
            kept.append(change)
        else:
            left[environment] = left.get(environment, 0) + 1
    return kept, left


def _classify(
    changes: Sequence[git.Change],
    *,
    old_source: Iterable[tuple[git.Change, str | None, str | None]],
) -> tuple[list[Path], list[Path], list[Path]]:
    """(paths to test, unchanged in meaning, deleted) among the changed Python files."""
    unchanged: set[Path] = set()
    for change, before, after in old_source:
        if before is not None and after is not None and semantic.equivalent(before, after):
            unchanged.add(change.path)
    paths = [
        c.path for c in changes
        if c.status != "deleted" and _is_python(c.path) and c.path not in unchanged
    ]
    deleted = [c.path for c in changes if c.status == "deleted" and _is_python(c.path)]
    return paths, sorted(unchanged), deleted


def _sources(
    root: Path, changes: Sequence[git.Change], base: str, head: str | None
) -> Iterator[tuple[git.Change, str | None, str | None]]:
    """For each modified migration: its source at ``base`` and now (``head``, or the disk)."""
    for change in changes:
        if change.status != "modified" or not _in_migrations_folder(change.path):
            continue
        before = git.file_at(root, base, change.path)
        if head is None:
            try:
                after: str | None = change.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                after = None
        else:
            after = git.file_at(root, head, change.path)
        yield change, before, after


def _with_changes(
    options: CheckOptions,
    *,
    root: Path,
    changes: Sequence[git.Change],
    base: str,
    head: str | None,
    mode: str,
    line: str,
) -> CheckOptions:
    changes, environments = _outside_environments(changes, root)
    sources = _sources(root, changes, base, head) if options.semantic_diff else ()
    paths, unchanged, deleted = _classify(changes, old_source=sources)
    notes = [line]
    for environment, count in sorted(environments.items()):
        notes.append(
            f"{count} changed file(s) in the Python environment {environment.relative_to(root)} "
            "(installed packages, not the project's code) not looked at; add it to .gitignore"
        )
    if unchanged:
        notes.append(
            f"{len(unchanged)} modified file(s) in migrations folders unchanged in meaning "
            "(comments, formatting, "
            "docstrings or annotations only), not selected: "
            + ", ".join(str(p.relative_to(root)) for p in unchanged)
        )
    return dataclasses.replace(
        options,
        paths=tuple(paths),
        deleted=tuple(deleted),
        run_mode=mode,
        notes=(*options.notes, *notes),
    )


def decide(
    options: CheckOptions,
    environ: Mapping[str, str],
    *,
    push_lines: Sequence[str] | None = None,
    remote: str = "origin",
) -> Decision:
    """The runs for ``check`` without PATHs, or for the plain pre-push hook (``push_lines``)."""
    if options.mode == "full":
        return Decision((Run(_full(options, "--full / --mode full")),))
    if options.mode == "auto" and push_lines is None:
        reason = ci_reason(environ)
        if reason:
            return Decision((Run(_full(options, f"running in CI ({reason})")),))
    try:
        root = git.repo_root(options.project_dir)
    except FatalError:
        if options.mode == "changed":
            raise
        why = f"{options.project_dir} is not in a git repository"
        return Decision((Run(_full(options, why)),))

    pushed = push.pre_commit_push_range(environ) if push_lines is None else None
    if push_lines is not None:
        ranges = [
            (r.from_sha, r.to_sha, f"{r.local_ref} -> {r.remote_ref}")
            for r in push.parse_push_lines(root, push_lines, remote)
        ]
    elif pushed is not None:
        ranges = [(pushed[0], pushed[1], "the range pre-commit passes")]
    if push_lines is not None or pushed is not None:
        runs = [_push_run(options, root, *r) for r in ranges]
        if not any(runs):
            return Decision((), "push mode: no Python file changed in the pushed commits")
        return Decision(tuple(run for run in runs if run is not None))

    try:
        base = target.find_base(root, base=options.base, configured=options.configured_base)
    except target.NoBase as exc:
        if options.mode == "changed":
            raise FatalError(f"--mode changed: {exc.reason}. Pass --base REF.") from None
        return Decision((Run(_full(options, exc.reason)),))
    changes = git.working_tree_changes(root, base.merge_base)
    line = (
        f"branch mode: the working tree against {base.target} ({base.how}), "
        f"merge-base {_short(base.merge_base)}"
    )
    run = _with_changes(options, root=root, changes=changes, base=base.merge_base, head=None,
                        mode="branch", line=line)
    if not any(_is_python(c.path) for c in _outside_environments(changes, root)[0]):
        return Decision((), f"{line}: no Python file changed, nothing to check")
    return Decision((Run(run),))


def _push_run(
    options: CheckOptions, root: Path, from_sha: str, to_sha: str, what: str
) -> Run | None:
    changes = git.commit_changes(root, from_sha, to_sha)
    if not any(_is_python(c.path) for c in changes):
        return None
    line = f"push mode: {what}, commits {_short(from_sha)}..{_short(to_sha)}"
    found = _with_changes(options, root=root, changes=changes, base=from_sha, head=to_sha,
                          mode="push", line=line)
    return Run(dataclasses.replace(found, shown_root=("", str(root))), commit=to_sha)


@contextlib.contextmanager
def materialised(run: Run) -> Iterator[CheckOptions]:
    """The run's options, pointed into an export of its commit when the working tree differs."""
    options, to_sha = run.options, run.commit
    if options.shown_root is None or to_sha is None:
        yield options
        return
    root = Path(options.shown_root[1])
    if git.is_checked_out(root, to_sha):
        yield dataclasses.replace(options, shown_root=None)
        return
    folder = Path(tempfile.mkdtemp(prefix="migration-guard-push-"))
    try:
        git.export_commit(root, to_sha, folder)

        def moved(path: Path) -> Path:
            return folder / path.relative_to(root)

        yield dataclasses.replace(
            options,
            project_dir=moved(options.project_dir),
            paths=tuple(moved(p) for p in options.paths),
            deleted=tuple(moved(p) for p in options.deleted),
            shown_root=(str(folder), str(root)),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)



def ci_reason(environ: Mapping[str, str]) -> str | None:
    """Why this looks like a CI run (``CI=true is set``), None when it does not."""
    for name in CI_VARIABLES:
        value = environ.get(name, "").strip()
        if value.lower() in ("", "0", "false", "no", "off"):
            continue
        if len(value) <= 20 and " " not in value:
            return f"{name}={value} is set"
        return f"{name} is set"
    return None
