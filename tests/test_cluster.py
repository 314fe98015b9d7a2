"""guard.database.cluster against the real PostgreSQL binaries of this machine: no mocks.

Each test makes its folders with tempfile.mkdtemp() (pytest's own tmp_path is 0700 and, as root,
out of reach of the user the server runs as) and checks that the processes it started are gone
and the folders it made removed.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.database import binaries, cluster
from guard.database.server import Server, connect
from guard.errors import FatalError
from tests.processes import process_gone, processes_mentioning, processes_using

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="only a root process switches users")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A traversable scratch folder (0755); the test's cluster goes in scratch/"pg"."""
    folder = Path(tempfile.mkdtemp(prefix="mg-cluster-test-"))
    folder.chmod(0o755)
    yield folder
    leftovers = sorted(p.name for p in folder.iterdir())
    shutil.rmtree(folder, ignore_errors=True)
    assert not leftovers, f"left behind in {folder}: {leftovers}"


def query(server: Server, sql: str) -> object:
    conn = connect(server, "postgres")
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchone()[0]
    finally:
        conn.close()


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def fake_bindir(scratch: Path, postgres_script: str) -> Path:
    """initdb and pg_ctl from the real binaries (symlinks), ``postgres`` a shell script."""
    real = binaries.find_binaries()
    assert real is not None
    bindir = scratch / "bin"
    bindir.mkdir(mode=0o755)
    for name in ("initdb", "pg_ctl"):
        (bindir / name).symlink_to(real / name)
    script = bindir / "postgres"
    script.write_text("#!/bin/sh\n" + postgres_script)
    script.chmod(0o755)
    return bindir


# --------------------------------------------------------------------------- find_binaries


def test_find_binaries_finds_initdb_pg_ctl_and_postgres_together() -> None:
    found = binaries.find_binaries()
    assert found is not None
    for name in ("initdb", "pg_ctl", "postgres"):
        program = found / name
        assert program.is_file() and os.access(program, os.X_OK), program
    assert binaries.find_binaries(found) == found


def test_find_binaries_explicit_folder_is_the_only_one_tried(scratch: Path) -> None:
    assert binaries.find_binaries(scratch) is None


def test_find_binaries_counts_a_folder_only_with_all_three(scratch: Path) -> None:
    for name in ("initdb", "pg_ctl"):
        program = scratch / name
        program.write_text("#!/bin/sh\nexit 0\n")
        program.chmod(0o755)
    assert binaries.find_binaries(candidates=[scratch / "missing", scratch]) is None
    postgres = scratch / "postgres"
    postgres.write_text("#!/bin/sh\nexit 0\n")
    assert binaries.find_binaries(candidates=[scratch]) is None  # not executable
    postgres.chmod(0o755)
    assert binaries.find_binaries(candidates=[scratch / "missing", scratch]) == scratch
    for name in ("initdb", "pg_ctl", "postgres"):
        (scratch / name).unlink()


# --------------------------------------------------------------------------- the cluster


def test_cluster_starts_answers_and_cleans_up(
    scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a folder the server's user may not enter: must not matter
    base = scratch / "pg"
    with cluster.LocalCluster.start(base) as local:
        server = local.server
        assert server.host == str(base / "socket") and server.user == "postgres"
        pid = local.pid
        assert pid is not None and not process_gone(pid)
        assert query(server, "SELECT 1") == 1
        assert query(server, "SHOW fsync") == "off"
        assert query(server, "SHOW listen_addresses") == ""
        assert query(server, "SHOW data_directory") == str(base / "data")
        if IS_ROOT:
            assert uid_of(pid) != 0
            assert (base / "data").stat().st_uid == uid_of(pid)
    assert process_gone(pid)
    assert not base.exists()
    assert local.pid is None
    local.stop()  # idempotent


def test_stop_ends_the_server_and_leaves_the_files(scratch: Path) -> None:
    base = scratch / "pg"
    with cluster.LocalCluster.start(base) as local:
        pid = local.pid
        assert pid is not None
        local.stop()
        assert process_gone(pid)
        assert (base / "data" / "PG_VERSION").is_file()
        assert not (base / "data" / "postmaster.pid").exists()  # a clean, fast shutdown
        local.stop()
    assert not base.exists()


def test_cluster_in_an_existing_base_folder_leaves_the_folder(scratch: Path) -> None:
    before = scratch.stat()
    with cluster.LocalCluster.start(scratch) as local:
        assert query(local.server, "SELECT 1") == 1
    after = scratch.stat()
    assert sorted(scratch.iterdir()) == []
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)


@root_only
def test_as_root_the_nobody_fallback_runs_the_server(scratch: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    base = scratch / "pg"
    with cluster.LocalCluster.start(base, run_as="nobody") as local:
        pid = local.pid
        assert pid is not None
        assert uid_of(pid) == nobody.pw_uid
        assert (base / "data").stat().st_uid == nobody.pw_uid
        assert query(local.server, "SELECT 1") == 1
    assert process_gone(pid)
    assert not base.exists()


@root_only
def test_as_root_an_unknown_user_is_a_clear_error(scratch: Path) -> None:
    with pytest.raises(FatalError, match="no-such-user-here"):
        cluster.LocalCluster.start(scratch / "pg", run_as="no-such-user-here")
    assert not (scratch / "pg").exists()


@root_only
def test_as_root_a_base_under_a_0700_folder_is_a_clear_error(scratch: Path) -> None:
    private = scratch / "private"
    private.mkdir(mode=0o700)
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    with pytest.raises(FatalError) as caught:
        cluster.LocalCluster.start(private / "pg")
    assert str(private) in str(caught.value)
    assert "chmod o+x" in str(caught.value)
    assert list(private.iterdir()) == []
    private.rmdir()


PKGLIBDIR = "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'"
PLPGSQL = (
    "CREATE FUNCTION pg_temp.answer() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 42; END $$;"
    " SELECT pg_temp.answer()"
)
"""Loads plpgsql's shared library."""


def private_installation(private: Path) -> Path:
    """A copy of this machine's PostgreSQL installation (its bin and lib) in ``private``.

    Plus symlinks that leave the installation, which the cluster's own copy must resolve: one
    absolute into ``private`` itself, one to the original ``lib``.
    """
    real = binaries.find_binaries()
    assert real is not None
    install = (real / "postgres").resolve().parent.parent
    copy = private / install.name
    copy.mkdir()
    for name in ("bin", "lib"):
        if (install / name).is_dir():
            shutil.copytree(install / name, copy / name, symlinks=True)
    (copy / "bin" / "pg_ctl-absolute").symlink_to(copy / "bin" / "pg_ctl")
    some_module = next(p for p in sorted((install / "lib").rglob("*.so")) if not p.is_symlink())
    (copy / "lib" / "module-absolute.so").symlink_to(some_module)
    (copy / "bin" / "relative-link").symlink_to("pg_ctl")
    return copy / "bin"


@root_only
def test_as_root_binaries_the_server_user_cannot_reach_are_copied(scratch: Path) -> None:
    private = scratch / "private"
    private.mkdir(mode=0o700)
    bindir = private_installation(private)
    before = sorted(str(p.relative_to(private)) for p in private.rglob("*"))
    base = scratch / "pg"
    with cluster.LocalCluster.start(base, bindir=bindir) as local:
        copy = base / "pginstall"
        assert local.install_dir == copy
        assert local.source_bindir == bindir and local.bindir == copy / "bin"
        pid = local.pid
        assert pid is not None and uid_of(pid) != 0
        assert os.readlink(f"/proc/{pid}/exe") == str(copy / "bin" / "postgres")
        assert query(local.server, "SELECT 1") == 1
        # Its modules come from the copy: the binaries find lib relative to themselves.
        assert str(query(local.server, PKGLIBDIR)).startswith(str(copy / "lib"))
        assert query(local.server, PLPGSQL) == 42
        # Symlinks within the copy stay, those leading out of it become files.
        assert (copy / "bin" / "relative-link").is_symlink()
        assert os.readlink(copy / "bin" / "relative-link") == "pg_ctl"
        for name in ("bin/pg_ctl-absolute", "lib/module-absolute.so"):
            assert (copy / name).is_file() and not (copy / name).is_symlink(), name
        assert copy.stat().st_uid == 0 and stat.S_IMODE(copy.stat().st_mode) == 0o755
        assert os.access(copy / "bin" / "initdb", os.X_OK)
    assert process_gone(pid)
    assert processes_using(base) == [] and processes_using(private) == []
    assert not base.exists()
    assert sorted(str(p.relative_to(private)) for p in private.rglob("*")) == before
    shutil.rmtree(private)


@root_only
def test_as_root_a_leftover_copy_of_the_binaries_is_not_reused(scratch: Path) -> None:
    private = scratch / "private"
    private.mkdir(mode=0o700)
    bindir = private_installation(private)
    (scratch / "pginstall").mkdir()
    with pytest.raises(FatalError, match="already exists") as caught:
        cluster.LocalCluster.start(scratch, bindir=bindir)
    assert str(scratch / "pginstall") in str(caught.value)
    assert sorted(p.name for p in scratch.iterdir()) == ["pginstall", "private"]
    assert list((scratch / "pginstall").iterdir()) == []
    (scratch / "pginstall").rmdir()
    shutil.rmtree(private)


def test_explicit_bindir_without_binaries_names_the_folder(scratch: Path) -> None:
    empty = scratch / "empty"
    empty.mkdir()
    with pytest.raises(FatalError) as caught:
        cluster.LocalCluster.start(scratch / "pg", bindir=empty)
    assert str(empty) in str(caught.value)
    assert not (scratch / "pg").exists()
    empty.rmdir()


def test_no_binaries_anywhere_names_where_it_looked(scratch: Path) -> None:
    empty = scratch / "empty"
    empty.mkdir()
    assert binaries.find_binaries(candidates=[empty]) is None
    with pytest.raises(FatalError) as caught:
        cluster.LocalCluster.start(scratch / "pg", search=[empty])
    message = str(caught.value)
    assert str(empty) in message
    assert 'pip install "migration-guard[embedded]"' in message
    assert not (scratch / "pg").exists()
    empty.rmdir()


def test_default_search_message_names_the_usual_folders() -> None:
    message = str(binaries.missing_binaries_error(None, None))
    assert "/usr/lib/postgresql/*/bin" in message and "pgserver" in message


def test_a_server_that_exits_at_start_is_reported_and_cleaned_up(scratch: Path) -> None:
    bindir = fake_bindir(scratch, 'echo "FATAL:  fake postgres refuses to start" >&2\nexit 3\n')
    base = scratch / "pg"
    with pytest.raises(FatalError) as caught:
        cluster.LocalCluster.start(base, bindir=bindir)
    message = str(caught.value)
    assert "exited with code 3" in message
    assert "fake postgres refuses to start" in message
    assert not base.exists()
    shutil.rmtree(bindir)


def test_a_server_that_never_answers_is_killed(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ignores fast and immediate shutdown: only the final SIGKILL ends it.
    bindir = fake_bindir(scratch, "trap '' INT QUIT\nwhile :; do sleep 0.1; done\n")
    monkeypatch.setattr(cluster, "STOP_TIMEOUT", 0.5)
    base = scratch / "pg"
    with pytest.raises(FatalError, match="did not accept connections within 1 s"):
        cluster.LocalCluster.start(base, bindir=bindir, timeout=1)
    assert processes_mentioning(str(base)) == []
    assert not base.exists()
    shutil.rmtree(bindir)


def test_too_long_a_socket_path_is_a_clear_error(scratch: Path) -> None:
    deep = scratch / ("d" * 60) / ("e" * 60)
    with pytest.raises(FatalError, match="too deep"):
        cluster.LocalCluster.start(deep)
    assert not (scratch / ("d" * 60)).exists()
