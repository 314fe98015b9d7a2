"""``--full --shard I/N``: the full run's round trip split into N parts that run on their own.

The full run rolls back the last N migrations of every project app together with everything
that depends on them. A shard takes some of those apps: it rolls back their last N and their
dependents, on its own database, from a base of everything else. The split is by app, as a CI
job that migrates each app back and forth splits it, balanced by an estimated cost that depends
only on the migration files, so that every shard, on any machine, computes the same split
without talking to the others.

A dependent of two shards' apps (``app9.0041`` depends on ``app2.0096`` and on ``app5.0077``)
must be rolled back in both, or neither could roll back. It *belongs* to one of them (the
shard of its own app when that one rolls it back, else the first): the parts that belong to
the shards are disjoint and together make the unsharded run's selection, which is what
``migration-guard report merge`` checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from guard.errors import FatalError
from guard.planning.graph import dependents
from guard.types import MigrationKey, Selected

if TYPE_CHECKING:
    from django.db.migrations.graph import MigrationGraph

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_SHARDS = 256


def parse(spec: str) -> tuple[int, int]:
    """``"2/4"`` as (2, 4); anything else is a usage error that says what is expected."""
    match = _SPEC.match(spec)
    index, count = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or not 1 <= index <= count or count > MAX_SHARDS:
        raise FatalError(
            f"--shard {spec}: expected I/N, the I-th of N shards with 1 <= I <= N <= "
            f"{MAX_SHARDS} (for example --shard 2/4)."
        )
    return index, count


@dataclass(frozen=True)
class Shard:
    index: int
    """1 for the first."""
    count: int
    apps: tuple[str, ...]
    """The apps whose last N this shard rolls back, sorted."""
    chosen: Mapping[MigrationKey, Selected]
    """Their last N: what the shard selects (its plan adds the dependents)."""
    owned: tuple[MigrationKey, ...]
    """What belongs to this shard, in apply order: disjoint from every other shard's."""
    everything: tuple[MigrationKey, ...]
    """The unsharded run's selection, in apply order: the shards' ``owned`` together."""
    cost: float
    """The estimated cost of the shard's round trip (what the split balances)."""

    def describe(self, last: int) -> str:
        """The run's note: which apps this shard rolls back, and what belongs to it."""
        if not self.apps:
            return (f"shard {self.index}/{self.count}: nothing to roll back (fewer apps with "
                    "migrations than shards): every migration is applied from an empty database "
                    "and the checks run")
        return (f"shard {self.index}/{self.count}: the last {last} of {', '.join(self.apps)} "
                f"and their dependents; {len(self.owned)} of the full run's "
                f"{len(self.everything)} migration(s) belong to this shard")


def migration_cost(graph: MigrationGraph, key: MigrationKey) -> float:
    """The estimated cost of one migration's round trip: three steps with a schema snapshot
    each, plus a share per operation (each one is applied, unapplied and applied again, with
    Django's state worked out for it)."""
    migration = graph.nodes.get(key)
    return 3.0 + len(getattr(migration, "operations", ()))


def split(graph: MigrationGraph, chosen: Mapping[MigrationKey, Selected], order:
          Sequence[MigrationKey], count: int) -> list[Shard]:
    """The ``count`` shards of the full run whose selection is ``chosen`` (the last N of each
    app) and whose round trip is ``order`` (``chosen`` and every dependent, in apply order).

    Apps are handed out largest first, each to the shard where it lengthens the longest shard
    least, then adds the least work (a dependent two of a shard's apps share is paid for once);
    with fewer apps than shards, the last shards have nothing to roll back.
    """
    by_app: dict[str, dict[MigrationKey, Selected]] = {}
    for key, item in chosen.items():
        by_app.setdefault(key[0], {})[key] = item
    costs = {key: migration_cost(graph, key) for key in order}
    closure: dict[str, set[MigrationKey]] = {}
    for app, keys in by_app.items():
        closure[app] = set(keys) | set(dependents(graph, keys))

    def cost_of(keys: set[MigrationKey]) -> float:
        return sum(costs.get(key, 0.0) for key in keys)

    bins: list[list[str]] = [[] for _ in range(count)]
    held: list[set[MigrationKey]] = [set() for _ in range(count)]
    loads = [0.0] * count
    for app in sorted(by_app, key=lambda a: (-cost_of(closure[a]), a)):

        def placed(i: int, app: str = app) -> tuple[float, float, float, int]:
            # The longest shard after it, then the work it adds (nothing when the shard rolls
            # its last N back already), then the shard's own load.
            load = cost_of(held[i] | closure[app])
            return (max(load, *(loads[j] for j in range(count) if j != i), 0.0),
                    load - loads[i], load, i)

        best = min(range(count), key=placed)
        bins[best].append(app)
        held[best] |= closure[app]
        loads[best] = cost_of(held[best])

    owner: dict[MigrationKey, int] = {}
    for key in order:
        holders = [i for i in range(count) if key in held[i]]
        mine = [i for i in holders if key[0] in bins[i]]
        owner[key] = (mine or holders or [0])[0]
    everything = tuple(order)
    return [
        Shard(
            index=i + 1,
            count=count,
            apps=tuple(sorted(bins[i])),
            chosen={k: v for app in bins[i] for k, v in by_app[app].items()},
            owned=tuple(key for key in order if owner[key] == i),
            everything=everything,
            cost=cost_of(held[i]),
        )
        for i in range(count)
    ]
