"""What a push brings: the ranges a pre-push hook checks, asked of git.

A plain git pre-push hook reads ``<local ref> <local sha> <remote ref> <remote sha>`` lines
(:func:`parse_push_lines`); under pre-commit, the range comes from its environment
(:func:`pre_commit_push_range`). Git is asked through :mod:`guard.selection.git`, the one module
that talks to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from guard.errors import FatalError
from guard.selection.git import EMPTY_TREE_SHA1, EMPTY_TREE_SHA256, Repository, open_repo


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

def _is_zero(sha: str) -> bool:
    return bool(sha) and set(sha) == {"0"}


def _empty_tree(sha: str) -> str:
    """The empty tree of the repository's hash (by the length of one of its shas)."""
    return EMPTY_TREE_SHA256 if len(sha) == 64 else EMPTY_TREE_SHA1

def parse_push_lines(root: Path, lines: Iterable[str], remote: str) -> list[PushRange]:
    """The ranges a plain pre-push hook checks, from git's ``<local ref> <local sha> <remote ref>
    <remote sha>`` lines.

    Deleted refs and refs with nothing new are left out. An update starts at the merge-base of
    the pushed commit with the remote's (the remote sha itself for a fast-forward). A new branch
    starts where it left the remote's default branch (``refs/remotes/<remote>/HEAD``), else at
    the parent of the oldest commit the remote lacks, else at the empty tree (a root commit).
    """
    ranges: list[PushRange] = []
    with open_repo(root) as repo:
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


def _push_start(
    repo: Repository, to_sha: str, remote_sha: str, remote_ref: str, remote: str
) -> str:
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
