"""The branch a working tree is compared with, and its merge-base with HEAD.

:func:`find_base` answers from ``--base``, the configuration, or the remote's default branch;
when there is none to be found it raises :class:`NoBase`, and the caller falls back to the full
run. Git is asked through :mod:`guard.selection.git`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guard.errors import FatalError
from guard.selection.git import Repository, open_repo

DEFAULT_BRANCHES = (
    "refs/remotes/origin/main",
    "refs/remotes/origin/master",
    "refs/heads/main",
    "refs/heads/master",
)


@dataclass(frozen=True)
class Base:
    """What the working tree is compared with."""

    target: str
    """The ref compared against, as the user would name it (``origin/main``)."""
    merge_base: str
    """The full sha of the merge-base of HEAD and the target."""
    how: str
    """One line on where the target came from (``--base origin/develop``, ``origin/HEAD`` ...)."""



class NoBase(Exception):
    """No base to compare with: not a usage error, the caller falls back to the full run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- talking to git ----------------------------------------------------------------------------


def find_base(root: Path, *, base: str | None, configured: str | None) -> Base:
    """The branch the working tree is compared with, and its merge-base with HEAD.

    The target is ``base`` (``--base``), else ``configured`` (``[tool.migration-guard] base``),
    else the remote's default branch (``origin/HEAD``), else the first of ``origin/main``,
    ``origin/master``, ``main``, ``master`` that exists. A given target that does not exist is a
    FatalError; no target, no commits, or no merge-base (shallow clone, unrelated histories)
    raise :class:`NoBase`.
    """
    with open_repo(root) as repo:
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


def _default_target(repo: Repository) -> tuple[str, str, str]:
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
