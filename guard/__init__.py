"""migration-guard: test Django migrations forward, backward and forward again."""

from __future__ import annotations
