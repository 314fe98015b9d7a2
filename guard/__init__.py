"""migration-guard: test Django migrations forward, backward and forward again."""

from __future__ import annotations


def version() -> str:
    """The installed package's version (looked up only when asked: it costs ~20 ms)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("migration-guard")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"
