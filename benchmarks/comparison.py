"""What the comparison benchmarks (aliases, rows, safety, incremental, cachedir) share: their
command line, and the lines of medians they print."""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from databases import Server, ServerError
from run import DEFAULT_URL, BenchmarkError


def medians(figures: Mapping[str, Sequence[float]], width: int, prefix: str = ""
            ) -> dict[str, float]:
    """Print one line per variant (its median, then every run) and return the medians."""
    found = {name: statistics.median(seconds) for name, seconds in figures.items()}
    for name, seconds in figures.items():
        shown = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"  {prefix}{name:<{width}} {found[name]:6.2f}s  (runs: {shown})")
    return found


def main(doc: str | None, argv: Sequence[str] | None, benchmark: Callable[..., int], *,
         repeat: int, options: Callable[[argparse.ArgumentParser], None] | None = None,
         extra: Callable[[argparse.Namespace], tuple[Any, ...]] = lambda args: ()) -> int:
    """Parse the common options (and ``options``' own), then run ``benchmark(migrations,
    repeat, db, server, seed, *extra(args))``; a failure is one line and exit code 1."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0] if doc else None)
    parser.add_argument("--migrations", type=int, default=300, metavar="N")
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--db", default=DEFAULT_URL, help="migration-guard's --db")
    parser.add_argument("--server", metavar="URL", default=DEFAULT_URL,
                        help="the server of the generated project's own check")
    parser.add_argument("--seed", type=int, default=0)
    if options is not None:
        options(parser)
    args = parser.parse_args(argv)
    try:
        return benchmark(args.migrations, args.repeat, args.db, Server.from_url(args.server),
                         args.seed, *extra(args))
    except (BenchmarkError, ServerError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
