"""The options on the wire: :class:`~guard.config.CheckOptions` as JSON, from the tool's
interpreter to the Django side in the project's own (:mod:`guard.worker`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guard.config import CheckOptions


def to_json(options: CheckOptions) -> str:
    """The options as JSON, for the Django side in the project's own interpreter."""
    import dataclasses
    import json

    data: dict[str, Any] = {}
    for item in dataclasses.fields(options):
        value = getattr(options, item.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (tuple, frozenset)):
            value = sorted(value) if isinstance(value, frozenset) else list(value)
            value = [str(v) if isinstance(v, Path) else v for v in value]
        data[item.name] = value
    return json.dumps(data)


_PATH_FIELDS = {"project_dir"}
_PATHS_FIELDS = {"paths", "deleted", "fixtures"}


def from_json(text: str) -> CheckOptions:
    import json

    data: dict[str, Any] = json.loads(text)
    for key in _PATH_FIELDS:
        if data.get(key) is not None:
            data[key] = Path(data[key])
    for key in _PATHS_FIELDS:
        data[key] = tuple(Path(p) for p in data.get(key, ()))
    data["notes"] = tuple(data.get("notes", ()))
    data["databases"] = tuple(data.get("databases", ()))
    data["formats"] = tuple((fmt, file) for fmt, file in data.get("formats", [("text", None)]))
    data["allow_irreversible"] = frozenset(data.get("allow_irreversible", ()))
    data["fail_on"] = frozenset(data.get("fail_on", ()))
    data["accept"] = tuple(tuple(pair) for pair in data.get("accept", ()))
    for key in ("shown_root", "shard"):
        if data.get(key) is not None:
            data[key] = tuple(data[key])
    return CheckOptions(**data)
