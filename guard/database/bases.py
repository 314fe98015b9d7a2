"""Finding or making a run's base template: exactly cached, grown from a smaller one, or built.

A base is kept in up to two templates (see :mod:`guard.database.cache` for the keys):

- the **bare** base: its migrations applied and nothing else. Its comment keeps the
  environment's digest and every applied migration's digest, so that a later base that holds
  all of them (main gained three migrations since) can start from a clone of it and apply only
  the ones it lacks: the largest such subset wins. Unapplying is never used to reach a base.
- the **seeded** base: a clone of the bare one with the generated rows (:mod:`guard.execution.
  seeding`) in it, the template a run clones. Rows are made for the whole base at once, never
  carried over from a smaller one, so a grown base holds the same rows a rebuilt one would.
  With ``--rows 0`` the bare base is what a run clones.

Every template is made in a database of its own and renamed once complete, under an advisory
lock named after it, so that a concurrent run waits instead of building it twice and never
clones a half-built one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from guard import timings
from guard.database import cache, throwaway
from guard.database.server import Server, connect_maintenance, driver_errors, quote_ident
from guard.errors import FatalError

if TYPE_CHECKING:
    from guard.database.portable import Folder

Build = Callable[[str, Collection[str]], bool]
"""``build(name, done)``: apply the base, except the migrations (labels) in ``done`` that the
database already holds, into the database ``name``; whether it succeeded."""
Seed = Callable[[str], dict[str, Any] | None]
"""``seed(name)``: put the rows in the database ``name``; what to keep with it, or None if it
failed."""


@dataclass(frozen=True)
class Base:
    """The template a run clones, and how it came to be."""

    name: str
    cached: bool
    """It was there: nothing was built."""
    reused: int = 0
    """Migrations that came from a smaller cached base (0: built from an empty database)."""
    restored: bool = False
    """It came from the cache folder's copy."""
    seeded: dict[str, Any] | None = None
    """What the seeding kept with the template."""


class Later(Protocol):
    """Work started beside the main line (:class:`guard.execution.beside.Beside`)."""

    def result(self) -> Mapping[str, str]: ...
    def cancel(self) -> None: ...


@dataclass(frozen=True)
class Wanted:
    """A base to find or make."""

    migrations: Mapping[str, str]
    """Each base migration's digest, by label, in the base's order."""
    environment: str
    """:func:`guard.database.cache.environment` without the rows."""
    rows: str | None
    """The row settings' part of the key, or None when no rows are made."""
    meanings: Callable[[Collection[str] | None], Mapping[str, str]] | None = None
    """The digests of what the migrations with these labels (None: all) mean, formatting
    aside: worked out on demand."""
    meanings_beside: Callable[[], Later] | None = None
    """Starts working out what every migration means beside the main line (while a base with
    nothing to grow from is built), for its comment."""

    def names(self) -> tuple[str, str]:
        """The bare template's name and the one a run clones (the same without rows)."""
        sources = cache.sources_digest(self.migrations)
        bare = cache.CACHE_PREFIX + cache.key(sources=sources, environment=self.environment)
        if self.rows is None:
            return bare, bare
        seeded = cache.key(sources=sources, environment=f"{self.environment}:rows:{self.rows}")
        return bare, cache.CACHE_PREFIX + seeded


def ensure(server: Server, wanted: Wanted, build: Build, seed: Seed, *,
           keep: int = cache.DEFAULT_SIZE, folder: Folder | None = None) -> Base | None:
    """The template for ``wanted``, made if missing (restored from ``folder``, the cache
    folder, if it holds a copy); None when building or seeding failed (nothing half-made is
    kept)."""
    bare, final = wanted.names()
    found = _stamped(server, final)
    if found is not None:
        _fill(folder, server, final, found)
        return Base(final, cached=True, seeded=found.get("seeded"))
    with cache.advisory_lock(server, final) as cur:
        if cache.exists(cur, final) and cache.touch(cur, final):  # made by a concurrent run
            found = cache.annotation(server, final)
            _fill(folder, server, final, found)
            return Base(final, cached=True, seeded=found.get("seeded"))
        restored = _restored(server, cur, final, folder)
        if restored is not None:
            cache.evict(server, keep, protect=(final,))
            return Base(final, cached=True, restored=True, seeded=restored.get("seeded"))
        if bare == final:
            reused = _bare(server, cur, bare, wanted, build, folder)
        else:
            with cache.advisory_lock(server, bare) as bare_cur:
                reused = _bare(server, bare_cur, bare, wanted, build, folder)
        if reused is None:
            return None
        seeded: dict[str, Any] | None = None
        if final != bare:
            building = throwaway.new_name("build")
            with timings.phase("copy", "of the bare base, for the rows", within="base"):
                throwaway.create_database(server, building, template=bare)
            seeded = _made(server, cur, final, seed, building, {"stage": "seeded"}, folder)
            if seeded is None:
                return None
    cache.evict(server, keep, protect=(bare, final))
    if folder is not None:
        folder.evict(keep, protect=(bare, final))
    return Base(final, cached=False, reused=reused, seeded=seeded or None)


def _fill(folder: Folder | None, server: Server, name: str, comment: dict[str, Any]) -> None:
    """The server has the template ``name`` and the cache folder no copy of it (the server
    outlived the folder, or the folder is new): write the copy, once, from a clone (a dump's
    connection to the template itself would stop the clones of it)."""
    if folder is None or folder.meta(name) is not None:
        return
    copying = throwaway.new_name("build")
    started = time.perf_counter()
    with timings.phase("copy", "of the base on the server, to the cache folder",
                       within="base"):
        throwaway.create_database(server, copying, template=name)
        try:
            folder.save(name, copying, comment)
        finally:
            throwaway.drop_database(server, copying)
    if folder.meta(name) is not None:
        folder.notes.append(f"cache folder: the server had this base and the folder no copy "
                            f"of it: wrote one to {folder.path} "
                            f"({time.perf_counter() - started:.1f}s, once)")


def _restored(server: Server, cur: Any, name: str, folder: Folder | None
              ) -> dict[str, Any] | None:
    """Restore the template ``name`` from the cache folder's copy: what its comment keeps, or
    None if there is no usable copy (nothing is left behind then)."""
    if folder is None or not (folder.path / f"{name}.json").exists():
        return None
    building = throwaway.new_name("restore")
    throwaway.create_database(server, building)
    comment: dict[str, Any] | None = None
    try:
        comment = folder.restore(name, building)
        if comment is not None:
            cur.execute(f"ALTER DATABASE {quote_ident(building)} RENAME TO {quote_ident(name)}")
            cache.touch(cur, name, **comment)
    finally:
        if comment is None or cache.exists(cur, building):
            throwaway.drop_database(server, building)
    return comment


def _stamped(server: Server, name: str) -> dict[str, Any] | None:
    """What the template ``name`` keeps, stamped as used now; None if there is none."""
    conn = connect_maintenance(server)
    try:
        cur = conn.cursor()
        if cache.exists(cur, name) and cache.touch(cur, name):
            return cache.comment(cur, name)
        return None
    finally:
        conn.close()


def _bare(server: Server, cur: Any, name: str, wanted: Wanted, build: Build,
          folder: Folder | None) -> int | None:
    """Make sure the bare template ``name`` exists, under its lock (held by ``cur``): how many
    of its migrations came from the cache (all if it was there, those of the smaller base it
    grew from, 0 if built from an empty database), or None if the build failed."""
    if cache.exists(cur, name) and cache.touch(cur, name):
        return len(wanted.migrations)
    if _restored(server, cur, name, folder) is not None:
        return len(wanted.migrations)
    on_server = [(entry, kept) for entry, _, kept in cache.entries(server)]
    in_folder = folder.entries() if folder is not None else []
    later: Later | None = None
    if wanted.meanings_beside is not None and not any(
            kept.get("stage") == "bare" and kept.get("environment") == wanted.environment
            for _, kept in [*on_server, *in_folder]):
        # Nothing to grow from, by bytes or by meaning: what the migrations mean is only for
        # the comment, worked out while the base is built.
        later = wanted.meanings_beside()
        parent, meanings = None, None
    else:
        parent, meanings = _parent(wanted, on_server, in_folder)
    try:
        return _build_bare(server, cur, name, wanted, build, folder, on_server, parent,
                           meanings, later)
    finally:
        if later is not None:
            later.cancel()


def _build_bare(server: Server, cur: Any, name: str, wanted: Wanted, build: Build,
                folder: Folder | None, on_server: Sequence[tuple[str, dict[str, Any]]],
                parent: tuple[str, frozenset[str]] | None, meanings: Mapping[str, str] | None,
                later: Later | None) -> int | None:
    stamp = {"stage": "bare", "environment": wanted.environment,
             "migrations": dict(wanted.migrations),
             **({"meanings": dict(meanings)} if meanings is not None else {})}
    building, done = throwaway.new_name("build"), frozenset[str]()
    if parent is not None and not any(parent[0] == entry for entry, _ in on_server) and (
            _restored(server, cur, parent[0], folder) is None):  # the folder's, put on the server
        parent = None
    if parent is not None and _take(server, cur, parent[0], building,
                                    consume=wanted.rows is not None):
        done = parent[1]
    else:
        throwaway.create_database(server, building)

    def fill(building: str) -> dict[str, Any] | None:
        return {} if build(building, done) else None

    made = _made(server, cur, name, fill, building, stamp, folder,
                 more=(lambda: {"meanings": dict(later.result())}) if later else None)
    return None if made is None else len(done)


def _take(server: Server, cur: Any, parent: str, building: str, *, consume: bool) -> bool:
    """Start ``building`` from the bare template ``parent``: whether that worked (it may have
    been evicted, or be in use by another run, meanwhile).

    With rows, a bare template is only ever a parent, and the new one holds all it held: it is
    renamed, not copied (a copy costs as much as a run's clone). Without rows it is also the
    template the runs of its own base clone, so it stays."""
    if not consume:
        try:
            throwaway.create_database(server, building, template=parent)
        except FatalError:
            return False
        return True
    try:
        cur.execute(f"ALTER DATABASE {quote_ident(parent)} RENAME TO {quote_ident(building)}")
    except driver_errors():
        return False
    return True


FEW = 20
"""Below this many migrations to apply, what the base's migrations mean is not worked out anew
(parsing every file costs more than applying a few): it is carried over from the parent."""


def _parent(wanted: Wanted, on_server: Sequence[tuple[str, dict[str, Any]]],
            in_folder: Sequence[tuple[str, dict[str, Any]]]
            ) -> tuple[tuple[str, frozenset[str]] | None, Mapping[str, str] | None]:
    """The base to grow from (on the server, else in the folder), and what the wanted
    migrations mean (None when not known)."""
    parent = closest_in(on_server, wanted) or closest_in(in_folder, wanted)
    if wanted.meanings is None:
        return parent, None
    if parent is not None and len(wanted.migrations) - len(parent[1]) <= FEW:
        kept = dict([*on_server, *in_folder]).get(parent[0], {}).get("meanings")
        if isinstance(kept, dict) and parent[1] <= set(kept):
            missing = [label for label in wanted.migrations if label not in parent[1]]
            return parent, {**{label: kept[label] for label in parent[1]},
                            **wanted.meanings(missing)}
    meanings = wanted.meanings(None)
    found = closest_in(on_server, wanted, meanings) or closest_in(in_folder, wanted, meanings)
    if found is not None and (parent is None or len(found[1]) > len(parent[1])):
        parent = found
    return parent, meanings


def closest(server: Server, wanted: Wanted, meanings: Mapping[str, str] | None = None
            ) -> tuple[str, frozenset[str]] | None:
    """The bare template of the same environment whose migrations are the largest subset of
    ``wanted``'s (same labels, same digests: of what they mean, where both sides know it), and
    those labels; None if there is none."""
    return closest_in([(name, kept) for name, _, kept in cache.entries(server)], wanted,
                      meanings)


def closest_in(entries: Sequence[tuple[str, dict[str, Any]]], wanted: Wanted,
               meanings: Mapping[str, str] | None = None) -> tuple[str, frozenset[str]] | None:
    """:func:`closest` among ``entries`` (names and what their comments keep)."""
    best: tuple[str, frozenset[str]] | None = None
    for name, kept in entries:
        held = kept.get("migrations")
        if (kept.get("stage") != "bare" or kept.get("environment") != wanted.environment
                or not isinstance(held, dict) or not held):
            continue
        mine: Mapping[str, Any] = wanted.migrations
        theirs = kept.get("meanings")
        if meanings is not None and isinstance(theirs, dict) and set(theirs) == set(held):
            mine, held = meanings, theirs
        if all(mine.get(label) == digest for label, digest in held.items()) and (
                best is None or len(held) > len(best[1])):
            best = (name, frozenset(held))
    return best


def _made(server: Server, cur: Any, name: str, fill: Seed, building: str,
          stamp: dict[str, Any], folder: Folder | None,
          more: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """``fill`` the new database ``building``, copy it to the cache folder, and rename it to
    ``name`` if that succeeded; what ``fill`` returned, or None (and the database dropped) if
    it did not."""
    kept: dict[str, Any] | None = None
    try:
        kept = fill(building)
        if kept is not None:
            if more is not None:  # what was worked out beside the build
                stamp = {**stamp, **more()}
            comment = {**stamp, "seeded": kept} if kept else stamp
            if folder is not None:  # before the rename: a dump's connection stops a clone
                folder.save(name, building, comment)
            cur.execute(f"ALTER DATABASE {quote_ident(building)} RENAME TO {quote_ident(name)}")
            cache.touch(cur, name, **comment)
    except driver_errors() as exc:
        raise FatalError(f"Cannot keep the base {name} on {server.describe()}: {exc}") from exc
    finally:
        if not cache.exists(cur, name) or cache.exists(cur, building):
            throwaway.drop_database(server, building)
    return kept
