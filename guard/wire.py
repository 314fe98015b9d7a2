"""The options on the wire: :class:`~guard.config.CheckOptions` as JSON, from the tool's
interpreter to the Django side in the project's own (:mod:`guard.worker`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from guard.config import CheckOptions


def to_json(options: CheckOptions) -> str:
    """The options as JSON, for the Django side in the project's own interpreter."""
    import dataclasses

    data: dict[str, Any] = {}
    for item in dataclasses.fields(options):
        value = getattr(options, item.name)
        if isinstance(value, Path):
            value = str(value)
        elif item.name == "clock":
            pass  # numbers and strings as they are
        elif isinstance(value, (tuple, frozenset)):
            value = sorted(value) if isinstance(value, frozenset) else list(value)
            value = [str(v) if isinstance(v, Path) else v for v in value]
        data[item.name] = value
    return json.dumps(data)


_PATH_FIELDS = {"project_dir"}
_PATHS_FIELDS = {"paths", "deleted", "fixtures"}


def from_json(text: str) -> CheckOptions:
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
    if data.get("clock") is not None:
        origin, phases = data["clock"]
        data["clock"] = (origin, tuple(tuple(phase) for phase in phases))
    return CheckOptions(**data)


def worker_environment() -> dict[str, str]:
    """This environment, with migration-guard importable in another interpreter."""
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_parent, env.get("PYTHONPATH", "")) if p
    )
    env.pop("PYTHONHOME", None)
    return env


def worker_request(options: CheckOptions, *, ahead: bool = False) -> bytes:
    """What ``python -m guard.worker`` reads on stdin: a line saying whether it starts ahead of
    git (then the options git decided on follow, see :mod:`guard.ahead`), then the options."""
    return (json.dumps({"ahead": ahead}) + "\n" + to_json(options) + "\n").encode()
