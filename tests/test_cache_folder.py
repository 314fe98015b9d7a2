"""--cache-dir: portable copies of the cached bases restore a server that lacks them (a CI job's
empty service container); a corrupt or foreign copy is ignored with a note, never trusted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.database import throwaway
from guard.database.server import Server
from tests.guardrun import Run, run_guard, write
from tests.test_cache import MIGRATION, unique
from tests.test_incremental_base import GAINED

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("db_guard")]


def check(shop: Path, pg_url: str, folder: Path, *extra: str) -> Run:
    run = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", pg_url,
                    "--format", "json", "--cache-dir", folder, *extra)
    assert run.returncode == 0, run.stderr
    return run


def copies(folder: Path) -> dict[str, dict[str, object]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def forget(server: Server, folder: Path) -> None:
    """The server loses every base the folder has a copy of: a fresh CI service container."""
    for name in copies(folder):
        throwaway.drop_database(server, name)


def test_a_server_without_the_base_restores_it_from_the_folder(
    shop: Path, pg_url: str, pg_server: Server, tmp_path: Path
) -> None:
    unique(shop)
    folder = tmp_path / "cache"
    first = check(shop, pg_url, folder)
    assert (first.report["base"]["cached"], first.report["base"]["restored"]) == (False, False)
    kept = copies(folder)
    assert sorted(meta["comment"]["stage"] for meta in kept.values()) == ["bare", "seeded"]
    assert all((folder / f"{name}.dump").stat().st_size == meta["size"]
               for name, meta in kept.items())

    forget(pg_server, folder)
    restored = check(shop, pg_url, folder)
    base = restored.report["base"]
    assert (base["cached"], base["restored"], base["migrations"]) == (True, True, 19)
    assert base["rows"] == first.report["base"]["rows"]  # what the seeding made, kept with it
    assert "(restored from the cache folder)" in restored.stderr
    assert restored.report["results"][0]["passed"] is True
    # On the server again: the next run clones it without the folder.
    again = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", pg_url,
                      "--format", "json")
    assert (again.report["base"]["cached"], again.report["base"]["restored"]) == (True, False)


@pytest.fixture
def forgotten(shop: Path, pg_url: str, pg_server: Server, tmp_path: Path) -> Path:
    """A cache folder holding this project's base, which the server has lost."""
    unique(shop)
    folder = tmp_path / "cache"
    check(shop, pg_url, folder)
    forget(pg_server, folder)
    return folder


def test_a_corrupt_copy_is_ignored_with_a_note(shop: Path, pg_url: str, forgotten: Path
                                               ) -> None:
    folder = forgotten
    for dump in folder.glob("*.dump"):  # same size, other bytes
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
    run = check(shop, pg_url, folder)
    assert (run.report["base"]["cached"], run.report["base"]["restored"]) == (False, False)
    assert "does not match its checksum: ignored, the base is replayed" in run.stderr
    assert run.report["results"][0]["passed"] is True


def test_a_foreign_copy_is_ignored_with_a_note(shop: Path, pg_url: str, forgotten: Path
                                               ) -> None:
    folder = forgotten
    for meta_path in folder.glob("*.json"):
        meta = json.loads(meta_path.read_text())
        meta["server_version"] = "9.6.24"
        meta_path.write_text(json.dumps(meta))
    run = check(shop, pg_url, folder)
    assert run.report["base"]["restored"] is False
    assert "is incomplete or foreign (made on server 9.6.24" in run.stderr


def test_a_base_grows_from_a_smaller_copy_in_the_folder(
    shop: Path, pg_url: str, pg_server: Server, tmp_path: Path
) -> None:
    unique(shop)
    folder = tmp_path / "cache"
    write(shop / "pyproject.toml", f'[tool.migration-guard]\ncache_dir = "{folder.name}"\n')
    shop.joinpath("pyproject.toml").replace(tmp_path / "pyproject.toml")  # above the project
    run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", pg_url)
    assert copies(folder), "cache_dir in pyproject.toml is relative to that file"
    forget(pg_server, folder)
    write(shop / "catalog/migrations/0004_gained.py", GAINED)
    grown = check(shop, pg_url, folder)
    base = grown.report["base"]
    assert (base["migrations"], base["cached"], base["reused"]) == (20, False, 19)
    assert len(copies(folder)) == 4  # the grown base's two copies beside the first's


def test_a_base_the_server_already_has_fills_an_empty_folder(
    shop: Path, pg_url: str, pg_server: Server, tmp_path: Path
) -> None:
    # A developer's server (or a CI job's persistent one) made the base before the folder
    # was given: the folder gets its copy once, and a fresh server restores from it.
    unique(shop)
    made = run_guard("check", shop / MIGRATION, "--project-dir", shop, "--db", pg_url,
                     "--format", "json")
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "cache"
    filled = check(shop, pg_url, folder)
    assert filled.report["base"]["cached"] is True
    kept = copies(folder)
    assert [meta["comment"]["stage"] for meta in kept.values()] == ["seeded"]
    [(name, meta)] = kept.items()
    assert (folder / f"{name}.dump").stat().st_size == meta["size"]
    assert f"the server had this base and the folder no copy of it: wrote one to {folder}" \
        in filled.stderr
    once = check(shop, pg_url, folder)  # the copy is there: not written again
    assert "wrote one to" not in once.stderr
    assert copies(folder) == kept

    forget(pg_server, folder)
    restored = check(shop, pg_url, folder)
    base = restored.report["base"]
    assert (base["cached"], base["restored"]) == (True, True)
    assert base["rows"] == made.report["base"]["rows"]
    assert restored.report["results"][0]["passed"] is True
