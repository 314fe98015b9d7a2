"""``migration-guard install``: put the plain pre-push hook in place, for teams without pre-commit.

The hooks folder is git's own answer (``git rev-parse --git-path hooks``), so ``core.hooksPath``
and worktrees are respected. A pre-push hook that is already there is kept as
``pre-push.legacy`` and still runs first; installing twice changes nothing.
"""

from __future__ import annotations

import shutil
import stat
import sys
from importlib import resources
from pathlib import Path

from guard.errors import FatalError
from guard.selection import git

MARKER = "migration-guard's git pre-push hook"


def shim() -> str:
    return resources.files("guard").joinpath("hooks/pre-push").read_text(encoding="utf-8")


def install(start: Path) -> int:
    root = git.repo_root(start)
    folder = git.hooks_dir(root)
    hook = folder / "pre-push"
    legacy = folder / "pre-push.legacy"
    text = shim()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if hook.exists() or hook.is_symlink():
            current = hook.read_text(encoding="utf-8", errors="replace") if hook.exists() else ""
            if MARKER in current:
                if current == text:
                    print(f"migration-guard: the pre-push hook in {hook} is up to date.")
                    return 0
            elif legacy.exists():
                raise FatalError(
                    f"{hook} is another pre-push hook, and {legacy} exists too: migration-guard "
                    "will not overwrite either. Merge them by hand, or add "
                    "`migration-guard pre-push \"$@\"` (with the hook's stdin) to your hook."
                )
            else:
                shutil.move(str(hook), str(legacy))
                print(f"migration-guard: kept the existing hook as {legacy}; it runs first.")
        hook.write_text(text, encoding="utf-8")
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    except OSError as exc:
        raise FatalError(f"Cannot write the pre-push hook {hook}: {exc}.") from exc
    print(f"migration-guard: installed the pre-push hook in {hook}.")
    if shutil.which("migration-guard") is None:
        print(
            "migration-guard: note: the migration-guard command is not on PATH here; the hook "
            f"needs it (it was run as {sys.argv[0]}).",
            file=sys.stderr,
        )
    return 0
