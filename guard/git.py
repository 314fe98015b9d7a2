"""Which files changed, asked of git: the one module that talks to git (through GitPython).

It answers in plain paths and shas; the Django side never imports it. Every git failure becomes a
:class:`~guard.errors.FatalError` naming the repository and the ref, and when no base to compare
with can be found, :class:`NoBase` says why (the caller then does the full run).

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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from guard.errors import FatalError

EMPTY_TREE_SHA1 = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
EMPTY_TREE_SHA256 = "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"
"""The tree with no files: the start of a range that begins at a root commit."""

RENAME_SIMILARITY = "90%"
DEFAULT_BRANCHES = (
    "refs/remotes/origin/main",
    "refs/remotes/origin/master",
    "refs/heads/main",
    "refs/heads/master",
)
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


@dataclass(frozen=True)
class Base:
    """What the working tree is compared with."""

    target: str
    """The ref compared against, as the user would name it (``origin/main``)."""
    merge_base: str
    """The full sha of the merge-base of HEAD and the target."""
    how: str
    """One line on where the target came from (``--base origin/develop``, ``origin/HEAD`` ...)."""


@dataclass(frozen=True)
class PushRange:
    """One pushed ref with new commits: the changes are ``from_sha`` .. ``to_sha``."""

    local_ref: str
    local_sha: str
    remote_ref: str
    from_sha: str
    """The commit the pushed range starts after (or the empty tree); never the zero sha."""
    to_sha: str
    """The pushed commit (``local_sha`` peeled to a commit)."""


class NoBase(Exception):
    """No base to compare with: not a usage error, the caller falls back to the full run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- talking to git ----------------------------------------------------------------------------


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


class _Repo:
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
def _scratch_index(repo: _Repo) -> Iterator[dict[str, str]]:
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
def _open(path: Path) -> Iterator[_Repo]:
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
        yield _Repo(path if top.resolve() == path.resolve() else top, repo)
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


def _is_zero(sha: str) -> bool:
    return bool(sha) and set(sha) == {"0"}


def _empty_tree(sha: str) -> str:
    """The empty tree of the repository's hash (by the length of one of its shas)."""
    return EMPTY_TREE_SHA256 if len(sha) == 64 else EMPTY_TREE_SHA1


def _relative(root: Path, path: Path) -> str:
    """``path`` relative to the root, as git names it; a relative path already is."""
    if not path.is_absolute():
        return path.as_posix()
    for candidate_root, candidate in ((root, path), (root.resolve(), path.resolve())):
        with contextlib.suppress(ValueError):
            return candidate.relative_to(candidate_root).as_posix()
    raise FatalError(f"{path} is not inside the git repository {root}")


def _check_rev(rev: str, root: Path) -> None:
    if not rev or rev.startswith("-"):
        raise FatalError(f"{rev!r} is not a commit of the git repository {root}")


# -- the questions -----------------------------------------------------------------------------


def repo_root(path: Path) -> Path:
    """The top of the working tree that contains ``path``."""
    start = path if path.is_dir() or not path.exists() else path.parent
    with _open(start) as repo:
        return repo.root


def find_base(root: Path, *, base: str | None, configured: str | None) -> Base:
    """The branch the working tree is compared with, and its merge-base with HEAD.

    The target is ``base`` (``--base``), else ``configured`` (``[tool.migration-guard] base``),
    else the remote's default branch (``origin/HEAD``), else the first of ``origin/main``,
    ``origin/master``, ``main``, ``master`` that exists. A given target that does not exist is a
    FatalError; no target, no commits, or no merge-base (shallow clone, unrelated histories)
    raise :class:`NoBase`.
    """
    with _open(root) as repo:
        head = repo.commit_of("HEAD")
        if head is None:
            raise NoBase("the repository has no commits yet")
        if base is not None or configured is not None:
            target = base if base is not None else str(configured)
            how = f"--base {target}" if base is not None else "[tool.migration-guard] base"
            target_sha = repo.commit_of(target)
            if target_sha is None:
                named = f"--base {target}" if base is not None else f"{how} = {target!r}"
                raise FatalError(
                    f"{named}: no branch, tag or commit of that name in {root}; check the "
                    "spelling, or run `git fetch` if it is a remote branch"
                )
        else:
            try:
                target, how, target_sha = _default_target(repo)
            except NoBase as exc:
                if repo.is_shallow():
                    raise NoBase(f"shallow clone with {exc.reason}") from None
                raise
        merge_base = repo.merge_base(head, target_sha)
        if merge_base is None:
            if repo.is_shallow():
                raise NoBase(
                    f"shallow clone: the merge-base of HEAD with {target} is not in the "
                    "history (`git fetch --unshallow` fetches it)"
                )
            raise NoBase(f"HEAD and {target} have no commit in common")
        return Base(target=target, merge_base=merge_base, how=how)


def _default_target(repo: _Repo) -> tuple[str, str, str]:
    """(target, how, sha): origin/HEAD, else the first default branch name that exists."""
    out = repo.run(
        "for-each-ref",
        "--format=%(refname) %(objecttype) %(objectname) %(symref)",
        "refs/remotes/origin/HEAD",
        *DEFAULT_BRANCHES,
        what="cannot list the branches",
    )
    found: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        refname, kind, sha, *symref = line.split(" ")
        if kind == "commit":
            found[refname] = (sha, symref[0] if symref else "")
    if "refs/remotes/origin/HEAD" in found:
        sha, points_to = found["refs/remotes/origin/HEAD"]
        if points_to.startswith("refs/remotes/"):
            return points_to.removeprefix("refs/remotes/"), "origin/HEAD", sha
    for refname in DEFAULT_BRANCHES:
        if refname in found:
            name = refname.removeprefix("refs/remotes/").removeprefix("refs/heads/")
            return name, f"fallback {name}", found[refname][0]
    raise NoBase(
        "no base branch: none of origin/HEAD, origin/main, origin/master, main, master exists"
    )


def working_tree_changes(root: Path, since: str) -> list[Change]:
    """The changes from commit ``since`` to the working tree.

    Staged and unstaged changes count, and so do untracked files that are not ignored (a new
    migration not yet ``git add``-ed is added). A rename the index does not know yet (a plain
    ``mv``) shows as a deletion and an addition.
    """
    _check_rev(since, root)
    with _open(root) as repo, _scratch_index(repo) as env:
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
    _check_rev(from_sha, root)
    _check_rev(to_sha, root)
    with _open(root) as repo:
        start = from_sha
        if from_sha not in (EMPTY_TREE_SHA1, EMPTY_TREE_SHA256):
            start = repo.merge_base(from_sha, to_sha) or from_sha
        what = f"cannot compare {from_sha} with {to_sha}"
        return repo.changes(start, to_sha, what=what)


def file_at(root: Path, rev: str, path: Path) -> str | None:
    """The text of ``path`` at ``rev``; None if it was not a file there, or is not UTF-8."""
    _check_rev(rev, root)
    with _open(root) as repo:
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
    with _open(root) as repo:
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
    with _open(root) as repo:
        out = repo.run("rev-parse", "--git-path", "hooks", what="cannot find the hooks folder")
        return repo.root / out.rstrip("\n")  # git answers relative to the root, or absolute


def parse_push_lines(root: Path, lines: Iterable[str], remote: str) -> list[PushRange]:
    """The ranges a plain pre-push hook checks, from git's ``<local ref> <local sha> <remote ref>
    <remote sha>`` lines.

    Deleted refs and refs with nothing new are left out. An update starts at the merge-base of
    the pushed commit with the remote's (the remote sha itself for a fast-forward). A new branch
    starts where it left the remote's default branch (``refs/remotes/<remote>/HEAD``), else at
    the parent of the oldest commit the remote lacks, else at the empty tree (a root commit).
    """
    ranges: list[PushRange] = []
    with _open(root) as repo:
        for raw in lines:
            if not raw.strip():
                continue
            parts = raw.strip().rsplit(maxsplit=3)
            if len(parts) != 4:
                raise FatalError(
                    f"unexpected pre-push input {raw.strip()!r}: git gives "
                    "'<local ref> <local sha> <remote ref> <remote sha>' per line"
                )
            local_ref, local_sha, remote_ref, remote_sha = parts
            if _is_zero(local_sha) or local_sha == remote_sha:
                continue
            to_sha = repo.commit_of(local_sha)
            if to_sha is None:  # a tag of a tree or a blob: no commits to check
                continue
            from_sha = _push_start(repo, to_sha, remote_sha, remote_ref, remote)
            if from_sha != to_sha:
                ranges.append(PushRange(local_ref, local_sha, remote_ref, from_sha, to_sha))
    return ranges


def _push_start(repo: _Repo, to_sha: str, remote_sha: str, remote_ref: str, remote: str) -> str:
    """The commit a pushed range starts after (``to_sha`` itself when nothing is new)."""
    if not _is_zero(remote_sha):
        known = repo.commit_of(remote_sha)
        if known is None:
            tracking = f"refs/remotes/{remote}/{remote_ref.removeprefix('refs/heads/')}"
            known = repo.commit_of(tracking) if remote_ref.startswith("refs/heads/") else None
            if known is None:
                raise FatalError(
                    f"{remote}'s {remote_ref} is at {remote_sha[:12]}, which {repo.root} does "
                    f"not have: run `git fetch {remote}` (and merge or rebase), then push again"
                )
        merge_base = repo.merge_base(to_sha, known)
        if merge_base is not None:
            return merge_base
    default = repo.commit_of(f"refs/remotes/{remote}/HEAD")
    if default is not None:
        merge_base = repo.merge_base(to_sha, default)
        if merge_base is not None:
            return merge_base
    out = repo.run(
        "rev-list", "--topo-order", "--reverse", "--parents", to_sha, "--not",
        f"--remotes={remote}",
        what=f"cannot list the commits of {to_sha} that {remote} lacks",
    )
    if not out.strip():
        return to_sha
    oldest, *parents = out.splitlines()[0].split()
    return parents[0] if parents else _empty_tree(oldest)


def export_commit(root: Path, sha: str, dest: Path) -> None:
    """Write the files of commit ``sha`` into the existing folder ``dest``.

    Through a throwaway index (``GIT_INDEX_FILE``) outside the repository: ``read-tree`` then
    ``checkout-index --prefix``, so the repository's index, worktrees and config stay untouched,
    and the files come out as a checkout would write them (``git archive`` would drop files
    marked ``export-ignore``).
    """
    _check_rev(sha, root)
    with _open(root) as repo, tempfile.TemporaryDirectory(prefix="migration-guard-") as tmp:
        commit = repo.commit_of(sha)
        if commit is None:
            raise FatalError(f"{sha} is not a commit of the git repository {root}")
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        what = f"cannot export {sha[:12]} into {dest}"
        repo.run("read-tree", commit, env=env, what=what)
        prefix = str(dest.resolve()) + os.sep
        repo.run("checkout-index", "--all", f"--prefix={prefix}", env=env, what=what)


def pre_commit_push_range(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(from, to) of pre-commit's pre-push stage, None outside it.

    pre-commit >= 2 sets ``PRE_COMMIT_FROM_REF`` / ``PRE_COMMIT_TO_REF``; older ones set
    ``PRE_COMMIT_ORIGIN`` (from) / ``PRE_COMMIT_SOURCE`` (to), which newer ones still set too.
    """
    for from_name, to_name in (
        ("PRE_COMMIT_FROM_REF", "PRE_COMMIT_TO_REF"),
        ("PRE_COMMIT_ORIGIN", "PRE_COMMIT_SOURCE"),
    ):
        from_ref, to_ref = environ.get(from_name), environ.get(to_name)
        if from_ref and to_ref:
            return from_ref, to_ref
    return None


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
