"""Which files changed, asked of git: the one module that talks to git (through GitPython).

It answers in plain paths and shas; the Django side never imports it. Every git failure becomes a
:class:`~guard.errors.FatalError` naming the repository and the ref. :class:`Repository` runs the
commands; :mod:`guard.selection.base` (which branch to compare with) and
:mod:`guard.selection.push` (what a push brings) ask their questions through it.

It never changes the repository: no checkout, stash, index or config writes. Every command runs
with ``--no-optional-locks`` (``git status`` then leaves the index alone), ``core.quotepath=off``
and literal pathspecs; ``git diff`` against the working tree rewrites the index regardless, so it
and the export run on a throwaway copy (``GIT_INDEX_FILE``). Renames are detected only at 90 %
similarity: git's default of 50 % pairs two unrelated migrations, whose boilerplate is alike.

GitPython is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from guard.errors import FatalError

EMPTY_TREE_SHA1 = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
EMPTY_TREE_SHA256 = "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"
"""The tree with no files: the start of a range that begins at a root commit."""

RENAME_SIMILARITY = "90%"

_GLOBAL_OPTIONS = (
    "--no-optional-locks",
    "--literal-pathspecs",
    "-c", "core.quotepath=off",
    # A scratch index written as a split index would add a shared index file to .git.
    "-c", "core.splitIndex=false",
)
_DIFF_OPTIONS = (
    "diff",
    "--name-status",
    "-z",
    "--no-color",
    "--no-ext-diff",
    f"--find-renames={RENAME_SIMILARITY}",
    "--diff-filter=ACDMRTU",
)
_STATUS: dict[str, Literal["added", "modified", "renamed", "deleted"]] = {
    "A": "added",
    "C": "added",
    "M": "modified",
    "T": "modified",
    "U": "modified",
    "R": "renamed",
    "D": "deleted",
}


@dataclass(frozen=True)
class Change:
    """One changed file. Copies count as added, type changes and conflicts as modified."""

    status: Literal["added", "modified", "renamed", "deleted"]
    path: Path
    """Absolute, in the working tree (for a deleted file: where it was)."""
    old_path: Path | None = None
    """For a rename: where the file was; else None."""


def _import_git() -> Any:
    try:
        import git
    except ImportError as exc:  # GitPython refuses to import when it cannot run git
        raise FatalError(f"cannot use git: {exc}".splitlines()[0]) from None
    return git


def _first_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line.split(":", 1)[1].strip()
    return lines[0] if lines else "no message"


class Repository:
    """One repository's git commands, each run with the options above."""

    def __init__(self, root: Path, repo: Any) -> None:
        self.root = root
        self.repo = repo

    def call_bytes(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> tuple[int, bytes, str]:
        """(exit status, stdout, stderr) of ``git <args>``; never raises for a non-zero exit."""
        git = _import_git()
        command = [self.repo.git.GIT_PYTHON_GIT_EXECUTABLE, *_GLOBAL_OPTIONS, *args]
        try:
            status, out, err = self.repo.git.execute(
                command,
                with_extended_output=True,
                with_exceptions=False,
                stdout_as_string=False,
                strip_newline_in_stdout=False,
                env=dict(env) if env else None,
            )
        except git.GitCommandNotFound:
            raise FatalError("git is not installed or not on PATH: install git") from None
        return int(status), bytes(out), str(err)

    def call(self, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
        """Like :meth:`call_bytes`, stdout decoded as file names are (``os.fsdecode``)."""
        status, out, err = self.call_bytes(*args, env=env)
        return status, os.fsdecode(out), err

    def run(self, *args: str, what: str, env: Mapping[str, str] | None = None) -> str:
        """Stdout of ``git <args>``; a failure is a FatalError that starts with ``what``."""
        status, out, err = self.call(*args, env=env)
        if status != 0:
            raise FatalError(f"{what} in {self.root}: git {args[0]} says: {_first_line(err)}")
        return out

    def commit_of(self, rev: str) -> str | None:
        """The full sha of the commit ``rev`` names, None if it names none."""
        if rev.startswith("-"):
            return None
        status, out, _ = self.call("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        return out.strip() if status == 0 and out.strip() else None

    def merge_base(self, one: str, other: str) -> str | None:
        """The best common ancestor of two commits, None if they have none (in this history)."""
        status, out, err = self.call("merge-base", one, other)
        if status == 1 and not out.strip():
            return None
        if status != 0:
            raise FatalError(
                f"cannot find the merge-base of {one} and {other} in {self.root}: "
                f"git merge-base says: {_first_line(err)}"
            )
        return out.strip()

    def is_shallow(self) -> bool:
        status, out, _ = self.call("rev-parse", "--is-shallow-repository")
        return status == 0 and out.strip() == "true"

    def changes(
        self, *revs: str, what: str, env: Mapping[str, str] | None = None
    ) -> list[Change]:
        out = self.run(*_DIFF_OPTIONS, *revs, "--", what=what, env=env)
        return _parse_name_status(out, self.root)


@contextlib.contextmanager
def _scratch_index(repo: Repository) -> Iterator[dict[str, str]]:
    """The environment for commands that would write the index: a copy of it, thrown away.

    ``git diff`` against the working tree refreshes the index's stat data and writes it back,
    ``--no-optional-locks`` notwithstanding (git 2.39): it gets a copy instead.
    """
    out = repo.run("rev-parse", "--git-path", "index", what="cannot find the index")
    path = repo.root / out.rstrip("\n")  # relative to the root, or absolute
    with tempfile.TemporaryDirectory(prefix="migration-guard-") as tmp:
        copy = os.path.join(tmp, "index")
        with contextlib.suppress(FileNotFoundError):  # no index yet: an empty one will do
            shutil.copyfile(path, copy)
        yield {"GIT_INDEX_FILE": copy}


@contextlib.contextmanager
def open_repo(path: Path) -> Iterator[Repository]:
    """The repository whose working tree holds ``path``; FatalError if there is none.

    Its root keeps the caller's spelling of the top folder (symbolic links and all).
    """
    git = _import_git()
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except git.NoSuchPathError:
        raise FatalError(f"{path} does not exist") from None
    except git.InvalidGitRepositoryError:
        raise FatalError(
            f"{path} is not inside a git repository: run migration-guard in a git clone, "
            "or name the migration files to check"
        ) from None
    try:
        if repo.bare or repo.working_tree_dir is None:
            raise FatalError(f"{path} is in a bare git repository, which has no working tree")
        top = Path(repo.working_tree_dir)
        yield Repository(path if top.resolve() == path.resolve() else top, repo)
    finally:
        repo.close()


def _parse_name_status(out: str, root: Path) -> list[Change]:
    """``git diff --name-status -z`` output: ``R090\\0old\\0new\\0`` / ``M\\0path\\0``."""
    fields = out.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    changes: list[Change] = []
    index = 0
    while index < len(fields):
        letter = fields[index][:1]
        if letter in ("R", "C"):
            old, new = fields[index + 1], fields[index + 2]
            index += 3
        else:
            old, new = "", fields[index + 1]
            index += 2
        status = _STATUS.get(letter)
        if status is None:  # "X" (unknown) cannot come through --diff-filter
            continue
        changes.append(Change(status, root / new, root / old if status == "renamed" else None))
    return changes



def _relative(root: Path, path: Path) -> str:
    """``path`` relative to the root, as git names it; a relative path already is."""
    if not path.is_absolute():
        return path.as_posix()
    for candidate_root, candidate in ((root, path), (root.resolve(), path.resolve())):
        with contextlib.suppress(ValueError):
            return candidate.relative_to(candidate_root).as_posix()
    raise FatalError(f"{path} is not inside the git repository {root}")


def check_rev(rev: str, root: Path) -> None:
    if not rev or rev.startswith("-"):
        raise FatalError(f"{rev!r} is not a commit of the git repository {root}")


# -- the questions -----------------------------------------------------------------------------


def repo_root(path: Path) -> Path:
    """The top of the working tree that contains ``path``."""
    start = path if path.is_dir() or not path.exists() else path.parent
    with open_repo(start) as repo:
        return repo.root


def working_tree_changes(root: Path, since: str) -> list[Change]:
    """The changes from commit ``since`` to the working tree.

    Staged and unstaged changes count, and so do untracked files that are not ignored (a new
    migration not yet ``git add``-ed is added). A rename the index does not know yet (a plain
    ``mv``) shows as a deletion and an addition.
    """
    check_rev(since, root)
    with open_repo(root) as repo, _scratch_index(repo) as env:
        what = f"cannot compare the working tree with {since}"
        changes = repo.changes(since, what=what, env=env)
        untracked = repo.run(
            "ls-files", "-z", "--others", "--exclude-standard",
            what="cannot list the untracked files", env=env,
        )
        top = repo.root
    deleted = {c.path: c for c in changes if c.status == "deleted"}
    for name in filter(None, untracked.split("\0")):
        path = top / name
        if path in deleted:  # removed from the index but still on disk: it is still there
            changes[changes.index(deleted[path])] = Change("modified", path)
        else:
            changes.append(Change("added", path))
    return sorted(changes, key=lambda change: change.path)


def commit_changes(root: Path, from_sha: str, to_sha: str) -> list[Change]:
    """The changes a push of ``to_sha`` brings over ``from_sha``.

    Like ``git diff from_sha...to_sha``: counted from the merge-base of the two, so that a force
    push does not list what only the remote had. ``from_sha`` may be the empty tree.
    """
    check_rev(from_sha, root)
    check_rev(to_sha, root)
    with open_repo(root) as repo:
        start = from_sha
        if from_sha not in (EMPTY_TREE_SHA1, EMPTY_TREE_SHA256):
            start = repo.merge_base(from_sha, to_sha) or from_sha
        what = f"cannot compare {from_sha} with {to_sha}"
        return repo.changes(start, to_sha, what=what)


def file_at(root: Path, rev: str, path: Path) -> str | None:
    """The text of ``path`` at ``rev``; None if it was not a file there, or is not UTF-8."""
    check_rev(rev, root)
    with open_repo(root) as repo:
        relative = _relative(repo.root, path)
        listing = repo.run("ls-tree", "-z", rev, "--", relative, what=f"cannot read {rev}")
        entry = listing.split("\0", 1)[0]
        if not entry:
            return None
        mode, kind, sha = entry.split("\t", 1)[0].split(" ")
        if kind != "blob" or mode not in ("100644", "100755"):
            return None
        status, content, err = repo.call_bytes("cat-file", "blob", sha)
        if status != 0:
            raise FatalError(f"cannot read {relative} at {rev} in {root}: {_first_line(err)}")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_checked_out(root: Path, sha: str) -> bool:
    """True when HEAD is ``sha`` and the working tree holds nothing else (not even untracked)."""
    with open_repo(root) as repo:
        head = repo.commit_of("HEAD")
        if head is None or head != repo.commit_of(sha):
            return False
        status = repo.run(
            "status", "--porcelain", "-z", "--untracked-files=all",
            what="cannot read the status of the working tree",
        )
        return status == ""


def hooks_dir(root: Path) -> Path:
    """The folder git runs hooks from (``core.hooksPath`` and worktrees respected)."""
    with open_repo(root) as repo:
        out = repo.run("rev-parse", "--git-path", "hooks", what="cannot find the hooks folder")
        return repo.root / out.rstrip("\n")  # git answers relative to the root, or absolute



def export_commit(root: Path, sha: str, dest: Path) -> None:
    """Write the files of commit ``sha`` into the existing folder ``dest``.

    Through a throwaway index (``GIT_INDEX_FILE``) outside the repository: ``read-tree`` then
    ``checkout-index --prefix``, so the repository's index, worktrees and config stay untouched,
    and the files come out as a checkout would write them (``git archive`` would drop files
    marked ``export-ignore``).
    """
    check_rev(sha, root)
    with open_repo(root) as repo, tempfile.TemporaryDirectory(prefix="migration-guard-") as tmp:
        commit = repo.commit_of(sha)
        if commit is None:
            raise FatalError(f"{sha} is not a commit of the git repository {root}")
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        what = f"cannot export {sha[:12]} into {dest}"
        repo.run("read-tree", commit, env=env, what=what)
        prefix = str(dest.resolve()) + os.sep
        repo.run("checkout-index", "--all", f"--prefix={prefix}", env=env, what=what)
