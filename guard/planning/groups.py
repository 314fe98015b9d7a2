"""The round trip split into groups that share nothing, for ``--jobs N``.

Two selected migrations belong to one group when one depends on the other, directly or through
other selected ones (a connected part of Django's graph restricted to the selection). A group
goes forward, backward and forward again on top of the base without any migration of another
group, so groups can run at once, each on its own clone of the base. :func:`pack` hands the
groups out to at most N jobs, largest first, each to the job that is least loaded so far, by
the estimated cost that the shards use (:func:`guard.planning.shards.migration_cost`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from guard.planning.shards import migration_cost
from guard.types import MigrationKey

if TYPE_CHECKING:
    from django.db.migrations.graph import MigrationGraph


def groups(graph: MigrationGraph, order: Sequence[MigrationKey]) -> list[list[MigrationKey]]:
    """The groups of ``order``, each in apply order, in the order their first member comes."""
    members = set(order)
    parent = {key: key for key in order}

    def root(key: MigrationKey) -> MigrationKey:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for key in order:
        for before in graph.node_map[key].parents:
            if before.key in members:
                parent[root(key)] = root(before.key)
    found: dict[MigrationKey, list[MigrationKey]] = {}
    for key in order:
        found.setdefault(root(key), []).append(key)
    return list(found.values())


def pack(graph: MigrationGraph, order: Sequence[MigrationKey], jobs: int
         ) -> list[tuple[MigrationKey, ...]]:
    """``order`` in at most ``jobs`` parts made of whole groups, the costliest first; each part
    in apply order. One part when there is one group or one job."""
    found = groups(graph, order)
    count = max(1, min(jobs, len(found)))
    cost = {key: migration_cost(graph, key) for key in order}
    bins: list[set[MigrationKey]] = [set() for _ in range(count)]
    loads = [0.0] * count
    for group in sorted(found, key=lambda g: -sum(cost[k] for k in g)):
        lightest = min(range(count), key=lambda i: (loads[i], i))
        bins[lightest].update(group)
        loads[lightest] += sum(cost[k] for k in group)
    ordered = sorted(range(count), key=lambda i: -loads[i])
    return [tuple(key for key in order if key in bins[i]) for i in ordered if bins[i]]
