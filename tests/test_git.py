"""guard.selection's git, base and push modules on real repositories: bases, changes, pushes,
exports, and a repository left alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guard.errors import FatalError
from guard.selection import git as g
from guard.selection.base import Base, NoBase, find_base
from guard.selection.changes import ci_reason
from guard.selection.push import PushRange, parse_push_lines, pre_commit_push_range
from tests.gitrepo import (
    bare,
    commit,
    git,
    hermetic_git,
    init,
    migration,
    pushed_lines,
    sha,
    state,
    write,
)


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic_git(monkeypatch, tmp_path / "home")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main with one commit."""
    root = init(tmp_path / "repo")
    commit(root, {"app/migrations/0001_initial.py": migration("app", 1, "initial", "")})
    return root


def remote_with_clone(tmp_path: Path, default: str = "main") -> tuple[Path, Path]:
    """A bare remote holding main (and develop), and a clone of it (which has origin/HEAD)."""
    origin = bare(tmp_path / "origin.git", default)
    seed = init(tmp_path / "seed")
    commit(seed, {"README": "seed\n"})
    git(seed, "branch", "develop")
    git(seed, "remote", "add", "origin", str(origin))
    git(seed, "push", "-q", "origin", "main", "develop")
    git(tmp_path, "clone", "-q", str(origin), "clone")
    return origin, tmp_path / "clone"


# -- repo_root ---------------------------------------------------------------------------------


def test_repo_root_from_a_subfolder_and_a_file(repo: Path) -> None:
    top = repo.resolve()
    assert g.repo_root(repo / "app" / "migrations").resolve() == top
    assert g.repo_root(repo / "app" / "migrations" / "0001_initial.py").resolve() == top


def test_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(FatalError, match=f"{plain} is not inside a git repository"):
        g.repo_root(plain)
    with pytest.raises(FatalError, match="is not inside a git repository"):
        find_base(plain, base=None, configured=None)
    with pytest.raises(FatalError, match="does not exist"):
        g.repo_root(tmp_path / "nowhere" / "x")


def test_hooks_dir(tmp_path: Path, repo: Path) -> None:
    assert g.hooks_dir(repo).resolve() == (repo / ".git" / "hooks").resolve()
    git(repo, "config", "core.hooksPath", ".githooks")
    assert g.hooks_dir(repo).resolve() == (repo / ".githooks").resolve()
    git(repo, "config", "core.hooksPath", str(tmp_path / "shared-hooks"))
    assert g.hooks_dir(repo) == tmp_path / "shared-hooks"
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"))
    assert g.hooks_dir(tmp_path / "wt") == tmp_path / "shared-hooks"


# -- find_base ---------------------------------------------------------------------------------


def test_origin_head_comes_first(tmp_path: Path) -> None:
    origin, clone = remote_with_clone(tmp_path)
    git(origin, "symbolic-ref", "HEAD", "refs/heads/develop")
    git(clone, "remote", "set-head", "origin", "--auto")
    fork = sha(clone)
    git(clone, "switch", "-q", "-c", "feature")
    commit(clone, {"a.py": "a = 1\n"})
    base = find_base(clone, base=None, configured=None)
    assert base == Base(target="origin/develop", merge_base=fork, how="origin/HEAD")


def test_base_flag_then_configured_win_over_origin_head(tmp_path: Path) -> None:
    _, clone = remote_with_clone(tmp_path)
    start = sha(clone)
    git(clone, "switch", "-q", "-c", "release")
    release = commit(clone, {"r.py": "r = 1\n"})
    git(clone, "switch", "-q", "-c", "feature")
    commit(clone, {"f.py": "f = 1\n"})
    assert find_base(clone, base="release", configured="origin/develop") == Base(
        "release", release, "--base release"
    )
    assert find_base(clone, base=None, configured="origin/develop") == Base(
        "origin/develop", start, "[tool.migration-guard] base"
    )
    assert find_base(clone, base=None, configured=None).how == "origin/HEAD"


def test_unknown_base_is_fatal(repo: Path) -> None:
    with pytest.raises(FatalError, match="--base origin/nope: no branch, tag or commit") as exc:
        find_base(repo, base="origin/nope", configured="main")
    assert exc.value.exit_code == 2
    with pytest.raises(FatalError, match=r"\[tool.migration-guard\] base = 'devlop'"):
        find_base(repo, base=None, configured="devlop")
    with pytest.raises(FatalError, match="--base --output=x"):
        find_base(repo, base="--output=x", configured=None)


def test_fallback_origin_main_before_local_main(tmp_path: Path, repo: Path) -> None:
    origin = bare(tmp_path / "origin.git")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")  # no origin/HEAD: only a clone sets it
    pushed = sha(repo)
    commit(repo, {"later.py": "x = 1\n"})  # main is ahead of origin/main
    base = find_base(repo, base=None, configured=None)
    assert base == Base("origin/main", pushed, "fallback origin/main")


def test_fallback_origin_master(tmp_path: Path) -> None:
    origin = bare(tmp_path / "origin.git", "master")
    root = init(tmp_path / "repo", "master")
    first = commit(root, {"a.py": "a = 1\n"})
    git(root, "remote", "add", "origin", str(origin))
    git(root, "push", "-q", "origin", "master")
    git(root, "switch", "-q", "-c", "feature")
    commit(root, {"b.py": "b = 1\n"})
    assert find_base(root, base=None, configured=None) == Base(
        "origin/master", first, "fallback origin/master"
    )


@pytest.mark.parametrize("branch", ["main", "master"])
def test_fallback_local_branch_without_remote(tmp_path: Path, branch: str) -> None:
    root = init(tmp_path / "repo", branch)
    first = commit(root, {"a.py": "a = 1\n"})
    git(root, "switch", "-q", "-c", "feature")
    commit(root, {"b.py": "b = 1\n"})
    commit(root, {"c.py": "c = 1\n"})
    assert find_base(root, base=None, configured=None) == Base(
        branch, first, f"fallback {branch}"
    )


def test_no_base_branch(tmp_path: Path) -> None:
    root = init(tmp_path / "repo", "trunk")
    commit(root, {"a.py": "a = 1\n"})
    with pytest.raises(NoBase) as exc:
        find_base(root, base=None, configured=None)
    assert exc.value.reason == (
        "no base branch: none of origin/HEAD, origin/main, origin/master, main, master exists"
    )
    assert not isinstance(exc.value, FatalError)


def test_empty_repository(tmp_path: Path) -> None:
    root = init(tmp_path / "repo")
    write(root, {"a.py": "a = 1\n"})
    with pytest.raises(NoBase, match="the repository has no commits yet"):
        find_base(root, base=None, configured=None)
    with pytest.raises(NoBase, match="the repository has no commits yet"):
        find_base(root, base="main", configured=None)


def test_shallow_clone_without_the_merge_base(tmp_path: Path) -> None:
    origin, clone = remote_with_clone(tmp_path)
    commit(clone, {"main.py": "m = 1\n"})
    git(clone, "push", "-q", "origin", "main")
    git(clone, "switch", "-q", "-c", "feature", "HEAD~1")
    commit(clone, {"f.py": "f = 1\n"})
    git(clone, "push", "-q", "origin", "feature")
    url = origin.as_uri()
    git(tmp_path, "clone", "-q", "--depth", "1", "--no-single-branch", "-b", "feature", url, "sh")
    shallow = tmp_path / "sh"
    assert git(shallow, "rev-parse", "--is-shallow-repository").strip() == "true"
    with pytest.raises(NoBase, match="shallow clone: the merge-base of HEAD with origin/main"):
        find_base(shallow, base=None, configured=None)


def test_shallow_clone_of_the_target_itself_is_fine(tmp_path: Path) -> None:
    origin, _ = remote_with_clone(tmp_path)
    git(tmp_path, "clone", "-q", "--depth", "1", origin.as_uri(), "sh")
    shallow = tmp_path / "sh"
    assert find_base(shallow, base=None, configured=None).merge_base == sha(shallow)


def test_root_given_as_a_subfolder_means_its_repository(repo: Path) -> None:
    base = find_base(repo / "app", base=None, configured=None)
    assert base.merge_base == sha(repo)
    write(repo, {"app/models.py": "m = 1\n"})
    changes = g.working_tree_changes(repo / "app", base.merge_base)
    assert [c.path.resolve() for c in changes] == [(repo / "app/models.py").resolve()]


def test_unrelated_histories(repo: Path) -> None:
    git(repo, "switch", "-q", "--orphan", "other")
    commit(repo, {"b.py": "b = 1\n"})
    with pytest.raises(NoBase, match="HEAD and main have no commit in common"):
        find_base(repo, base=None, configured=None)


def test_detached_head(repo: Path) -> None:
    start = sha(repo)
    git(repo, "switch", "-q", "-c", "feature")
    commit(repo, {"b.py": "b = 1\n"})
    git(repo, "switch", "-q", "--detach", "feature")
    assert find_base(repo, base=None, configured=None) == Base("main", start, "fallback main")


def test_single_commit_on_the_target_itself(repo: Path) -> None:
    base = find_base(repo, base=None, configured=None)
    assert base.merge_base == sha(repo)
    assert g.working_tree_changes(repo, base.merge_base) == []


# -- changes -----------------------------------------------------------------------------------

APP = "app ü/migrations"
"""A folder with a space and a non-ASCII letter."""


def test_working_tree_changes(repo: Path) -> None:
    root = repo
    write(root, {".gitignore": "*.log\n"})
    base = commit(root, {
        f"{APP}/0001_initial.py": migration("app", 1, "initial", ""),
        f"{APP}/0002_old name.py": migration("app", 2, "rename me", "        # keep\n"),
        "shop/migrations/0001_initial.py": migration("shop", 1, "shop", ""),
        "shop/migrations/0002_gone.py": migration("shop", 2, "gone", ""),
        "shop/models.py": "class Shop: pass\n",
        "shop/staged.py": "x = 1\n",
        "shop/unstaged.py": "y = 1\n",
    })
    git(root, "switch", "-q", "-c", "feature")
    commit(root, {"shop/models.py": "class Shop:\n    name = 1\n"})
    git(root, "mv", f"{APP}/0002_old name.py", f"{APP}/0002_new name.py")
    git(root, "rm", "-q", "shop/migrations/0002_gone.py")
    write(root, {"shop/staged.py": "x = 2\n"})
    git(root, "add", "shop/staged.py")
    write(root, {
        "shop/unstaged.py": "y = 2\n",
        f"{APP}/0003_x.py": migration("app", 3, "new", "        # new\n"),
        "debug.log": "ignored\n",
    })

    assert g.working_tree_changes(root, base) == [
        g.Change("renamed", root / APP / "0002_new name.py", root / APP / "0002_old name.py"),
        g.Change("added", root / APP / "0003_x.py"),
        g.Change("deleted", root / "shop/migrations/0002_gone.py"),
        g.Change("modified", root / "shop/models.py"),
        g.Change("modified", root / "shop/staged.py"),
        g.Change("modified", root / "shop/unstaged.py"),
    ]


def test_unrelated_migrations_are_not_a_rename(repo: Path) -> None:
    old = "orders/migrations/0002_add_discount.py"
    new = "orders/migrations/0002_add_note.py"
    base = commit(repo, {old: migration("orders", 2, "discount", (
        "        migrations.AddField(\n            model_name='order',\n"
        "            name='discount',\n            field=models.IntegerField(default=0),\n"
        "        ),\n"
    ))})
    head = commit(repo, {old: None, new: migration("orders", 2, "note", (
        "        migrations.AddField(\n            model_name='order',\n"
        "            name='note',\n            field=models.TextField(blank=True),\n"
        "        ),\n"
    ))})
    # git's default threshold would pair them:
    assert git(repo, "diff", "--name-status", "-M50%", base, head).startswith("R")
    expected = [
        g.Change("deleted", repo / old),
        g.Change("added", repo / new),
    ]
    assert g.working_tree_changes(repo, base) == expected
    assert sorted(g.commit_changes(repo, base, head), key=lambda c: c.path) == expected


def test_untracked_file_removed_from_the_index_is_modified(repo: Path) -> None:
    base = sha(repo)
    git(repo, "rm", "-q", "--cached", "app/migrations/0001_initial.py")
    write(repo, {"app/migrations/0001_initial.py": "# edited\n"})
    assert g.working_tree_changes(repo, base) == [
        g.Change("modified", repo / "app/migrations/0001_initial.py")
    ]


def test_commit_changes(repo: Path) -> None:
    first = sha(repo)
    second = commit(repo, {
        f"{APP}/0002_ü.py": migration("app", 2, "ü", ""),
        "app/migrations/0001_initial.py": None,
        "app/migrations/0001_renamed.py": migration("app", 1, "initial", ""),
    })
    assert sorted(g.commit_changes(repo, first, second), key=lambda c: c.path) == [
        g.Change("renamed", repo / "app/migrations/0001_renamed.py",
                 repo / "app/migrations/0001_initial.py"),
        g.Change("added", repo / APP / "0002_ü.py"),
    ]
    assert g.commit_changes(repo, second, second) == []


def test_commit_changes_count_from_the_merge_base(repo: Path) -> None:
    """A force push: what only the remote had is not part of the change."""
    start = sha(repo)
    upstream = commit(repo, {"upstream.py": "u = 1\n"})
    git(repo, "switch", "-q", "-c", "rewritten", start)
    mine = commit(repo, {"mine.py": "m = 1\n"})
    assert g.commit_changes(repo, upstream, mine) == [g.Change("added", repo / "mine.py")]


def test_file_at(repo: Path) -> None:
    first = sha(repo)
    path = repo / APP / "0002_x.py"
    second = commit(repo, {f"{APP}/0002_x.py": "x = 'ü'\n"})
    (repo / "latin.py").write_bytes("x = 'é'\n".encode("latin-1"))
    third = commit(repo, {f"{APP}/0002_x.py": "x = 2\n"})
    assert g.file_at(repo, second, path) == "x = 'ü'\n"
    assert g.file_at(repo, third, path) == "x = 2\n"
    assert g.file_at(repo, first, path) is None
    assert g.file_at(repo, third, repo / APP) is None  # a folder, not a file
    assert g.file_at(repo, third, repo / "latin.py") is None  # not UTF-8
    assert g.file_at(repo, "main", Path(f"{APP}/0002_x.py")) == "x = 2\n"
    with pytest.raises(FatalError, match="cannot read nope in"):
        g.file_at(repo, "nope", path)


# -- pushes ------------------------------------------------------------------------------------


@pytest.fixture
def pushing(tmp_path: Path, repo: Path) -> tuple[Path, str]:
    """``repo`` with a bare remote (no origin/HEAD) that has main."""
    origin = bare(tmp_path / "origin.git")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    return repo, sha(repo)


def test_push_update(pushing: tuple[Path, str]) -> None:
    root, old = pushing
    new = commit(root, {"a.py": "a = 1\n"})
    lines = pushed_lines(root, "origin", "main")
    assert lines == [f"refs/heads/main {new} refs/heads/main {old}"]
    assert parse_push_lines(root, lines, "origin") == [
        PushRange("refs/heads/main", new, "refs/heads/main", old, new)
    ]


def test_push_new_branch_starts_where_it_left_main(pushing: tuple[Path, str]) -> None:
    root, main = pushing
    git(root, "switch", "-q", "-c", "feature")
    commit(root, {"a.py": "a = 1\n"})
    tip = commit(root, {"b.py": "b = 1\n"})
    lines = pushed_lines(root, "origin", "feature")
    assert parse_push_lines(root, lines, "origin") == [
        PushRange("refs/heads/feature", tip, "refs/heads/feature", main, tip)
    ]
    assert [c.path.name for c in g.commit_changes(root, main, tip)] == ["a.py", "b.py"]


def test_push_new_branch_uses_the_remote_default_branch(tmp_path: Path) -> None:
    origin, clone = remote_with_clone(tmp_path)
    fork = sha(clone)
    git(clone, "switch", "-q", "-c", "feature")
    tip = commit(clone, {"a.py": "a = 1\n"})
    lines = pushed_lines(clone, "origin", "feature")
    assert parse_push_lines(clone, lines, "origin") == [
        PushRange("refs/heads/feature", tip, "refs/heads/feature", fork, tip)
    ]


def test_push_two_refs_at_once(pushing: tuple[Path, str]) -> None:
    root, old = pushing
    new = commit(root, {"a.py": "a = 1\n"})
    git(root, "switch", "-q", "-c", "feature")
    tip = commit(root, {"b.py": "b = 1\n"})
    lines = pushed_lines(root, "origin", "main", "feature")
    assert len(lines) == 2
    # The remote has neither commit yet: feature's range starts at what the remote has.
    assert sorted(parse_push_lines(root, lines, "origin"), key=lambda r: r.local_ref) == [
        PushRange("refs/heads/feature", tip, "refs/heads/feature", old, tip),
        PushRange("refs/heads/main", new, "refs/heads/main", old, new),
    ]


def test_push_deletion_and_nothing_new_are_skipped(pushing: tuple[Path, str]) -> None:
    root, main = pushing
    git(root, "push", "-q", "origin", "main:refs/heads/old")
    deletion = pushed_lines(root, "origin", "--delete", "old")
    assert deletion == [f"(delete) {'0' * 40} refs/heads/old {main}"]
    git(root, "branch", "same")
    same = pushed_lines(root, "origin", "same")
    assert len(same) == 1
    assert parse_push_lines(root, [*deletion, *same, ""], "origin") == []
    assert parse_push_lines(root, [f"refs/heads/main {main} refs/heads/main {main}"], "o") == []


def test_push_of_a_tag_on_pushed_commits_is_skipped(pushing: tuple[Path, str]) -> None:
    root, _ = pushing
    git(root, "tag", "-a", "-m", "release", "v1")
    lines = pushed_lines(root, "origin", "v1")
    assert len(lines) == 1 and lines[0].startswith("refs/tags/v1 ")
    assert parse_push_lines(root, lines, "origin") == []


def test_push_of_a_root_commit_starts_at_the_empty_tree(tmp_path: Path, repo: Path) -> None:
    origin = bare(tmp_path / "origin.git")
    git(repo, "remote", "add", "origin", str(origin))
    tip = commit(repo, {"b.py": "b = 1\n"})
    lines = pushed_lines(repo, "origin", "main")
    assert parse_push_lines(repo, lines, "origin") == [
        PushRange("refs/heads/main", tip, "refs/heads/main", g.EMPTY_TREE_SHA1, tip)
    ]
    assert {c.status for c in g.commit_changes(repo, g.EMPTY_TREE_SHA1, tip)} == {"added"}
    assert [c.path.name for c in g.commit_changes(repo, g.EMPTY_TREE_SHA1, tip)] == [
        "0001_initial.py", "b.py"
    ]


def test_push_force_starts_at_the_merge_base(pushing: tuple[Path, str]) -> None:
    root, start = pushing
    old = commit(root, {"a.py": "a = 1\n"})
    git(root, "push", "-q", "origin", "main")
    git(root, "reset", "-q", "--hard", start)
    new = commit(root, {"b.py": "b = 1\n"})
    lines = pushed_lines(root, "-f", "origin", "main")
    assert lines == [f"refs/heads/main {new} refs/heads/main {old}"]
    assert parse_push_lines(root, lines, "origin") == [
        PushRange("refs/heads/main", new, "refs/heads/main", start, new)
    ]


def test_push_when_the_remote_moved_and_we_did_not_fetch(
    tmp_path: Path, pushing: tuple[Path, str]
) -> None:
    root, start = pushing
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), "other")
    theirs = commit(other, {"theirs.py": "t = 1\n"})
    git(other, "push", "-q", "origin", "main")
    mine = commit(root, {"mine.py": "m = 1\n"})
    line = f"refs/heads/main {mine} refs/heads/main {theirs}"
    assert parse_push_lines(root, [line], "origin") == [
        PushRange("refs/heads/main", mine, "refs/heads/main", start, mine)
    ]
    git(root, "update-ref", "-d", "refs/remotes/origin/main")
    with pytest.raises(FatalError, match="run `git fetch origin`"):
        parse_push_lines(root, [line], "origin")


def test_push_line_that_is_not_git_s(repo: Path) -> None:
    with pytest.raises(FatalError, match="unexpected pre-push input"):
        parse_push_lines(repo, ["refs/heads/main abc"], "origin")


def test_pre_commit_push_range() -> None:
    assert pre_commit_push_range({}) is None
    assert pre_commit_push_range({"PRE_COMMIT_FROM_REF": "a"}) is None
    assert pre_commit_push_range({"PRE_COMMIT_FROM_REF": "a", "PRE_COMMIT_TO_REF": "b"}) == (
        "a", "b"
    )
    # pre-commit 1.x: ORIGIN is where the push starts, SOURCE what is pushed (4.x sets both).
    assert pre_commit_push_range({"PRE_COMMIT_ORIGIN": "a", "PRE_COMMIT_SOURCE": "b"}) == (
        "a", "b"
    )


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({}, None),
        ({"CI": "true"}, "CI=true is set"),
        ({"CI": "false", "GITHUB_ACTIONS": "true"}, "GITHUB_ACTIONS=true is set"),
        ({"CI": "0", "TF_BUILD": "True"}, "TF_BUILD=True is set"),
        ({"CI": "", "JENKINS_URL": "https://jenkins.example.com/"}, "JENKINS_URL is set"),
        ({"GITLAB_CI": "false", "BUILDKITE": "0"}, None),
    ],
)
def test_ci_reason(environ: dict[str, str], reason: str | None) -> None:
    assert ci_reason(environ) == reason


# -- export ------------------------------------------------------------------------------------


def test_export_commit(tmp_path: Path, repo: Path) -> None:
    write(repo, {".gitattributes": "docs export-ignore\n", "docs/index.txt": "docs\n"})
    (repo / "run.sh").write_text("#!/bin/sh\n", encoding="utf-8")
    (repo / "run.sh").chmod(0o755)
    os.symlink("run.sh", repo / "link")
    pushed = commit(repo, {f"{APP}/0002_x.py": "x = 1\n"})
    commit(repo, {f"{APP}/0002_x.py": "x = 2\n", "later.py": "later\n"})
    write(repo, {f"{APP}/0002_x.py": "x = 3\n", "untracked.py": "u\n"})
    before = state(repo)

    dest = tmp_path / "export"
    dest.mkdir()
    g.export_commit(repo, pushed, dest)

    exported = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir())
    assert exported == [
        ".gitattributes", "app ü/migrations/0002_x.py", "app/migrations/0001_initial.py",
        "docs/index.txt", "link", "run.sh",
    ]
    assert (dest / APP / "0002_x.py").read_text(encoding="utf-8") == "x = 1\n"
    assert os.access(dest / "run.sh", os.X_OK)
    assert os.readlink(dest / "link") == "run.sh"
    assert state(repo) == before
    with pytest.raises(FatalError, match="nope is not a commit"):
        g.export_commit(repo, "nope", dest)


# -- leaving the repository alone --------------------------------------------------------------


def test_every_function_leaves_the_repository_alone(tmp_path: Path) -> None:
    _, clone = remote_with_clone(tmp_path)
    start = sha(clone)
    git(clone, "switch", "-q", "-c", "feature")
    commit(clone, {"app/migrations/0002_a.py": "a = 1\n", "app/models.py": "m = 1\n"})
    tip = commit(clone, {"app/migrations/0003_b.py": "b = 1\n"})
    write(clone, {"app/models.py": "m = 2\n"})
    git(clone, "add", "app/models.py")
    write(clone, {"app/migrations/0002_a.py": "a = 2\n", "app/migrations/0004_c.py": "c\n"})
    # A file whose stat no longer matches the index: a plain `git status` would rewrite it.
    os.utime(clone / "README", ns=(10**18, 10**18))
    copy = tmp_path / "copy"
    shutil.copytree(clone, copy, symlinks=True)
    index = (copy / ".git" / "index").read_bytes()
    git(copy, "status", "--porcelain")
    assert (copy / ".git" / "index").read_bytes() != index

    before = state(clone)
    assert g.repo_root(clone / "app").resolve() == clone.resolve()
    assert g.hooks_dir(clone).resolve() == (clone / ".git" / "hooks").resolve()
    base = find_base(clone, base=None, configured=None)
    assert base.merge_base == start
    assert len(g.working_tree_changes(clone, base.merge_base)) == 4
    assert len(g.commit_changes(clone, start, tip)) == 3
    assert g.file_at(clone, tip, clone / "app/migrations/0002_a.py") == "a = 1\n"
    assert not g.is_checked_out(clone, tip)
    lines = [f"refs/heads/feature {tip} refs/heads/feature {'0' * 40}"]
    assert parse_push_lines(clone, lines, "origin")[0].from_sha == start
    dest = tmp_path / "export"
    dest.mkdir()
    g.export_commit(clone, tip, dest)
    assert state(clone) == before


def test_importing_the_module_does_not_import_gitpython() -> None:
    code = "import sys, guard.selection.git; assert 'git' not in sys.modules, 'git imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_is_checked_out(repo: Path) -> None:
    head = sha(repo)
    assert g.is_checked_out(repo, head)
    assert g.is_checked_out(repo, "main")
    write(repo, {"new.py": "n\n"})
    assert not g.is_checked_out(repo, head)
    (repo / "new.py").unlink()
    older = head
    commit(repo, {"b.py": "b\n"})
    assert not g.is_checked_out(repo, older)
