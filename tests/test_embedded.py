"""guard.database.cluster and guard.database.binaries with the PostgreSQL 16 binaries of the
optional ``pgserver`` wheel: no mocks.

Skipped where pgserver is not installed (``pip install "migration-guard[embedded]"``). As in
test_cluster, folders come from tempfile.mkdtemp(), and each test checks that the processes it
started are gone and the folders it made removed.
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
from guard.database.server import Server
from tests.processes import process_gone, processes_using
from tests.test_cluster import PKGLIBDIR, PLPGSQL, query, root_only, uid_of

pgserver = pytest.importorskip("pgserver")

PACKAGE = Path(pgserver.__file__).parent
SHAREDIR = "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'"


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A traversable scratch folder (0755) that must end empty and unused by any process."""
    folder = Path(tempfile.mkdtemp(prefix="mg-embedded-test-"))
    folder.chmod(0o755)
    yield folder
    using = processes_using(folder)
    leftovers = sorted(p.name for p in folder.iterdir())
    shutil.rmtree(folder, ignore_errors=True)
    assert not using, f"processes still using {folder}: {using}"
    assert not leftovers, f"left behind in {folder}: {leftovers}"


def wheel_copy(parent: Path) -> Path:
    """pgserver's installation laid out in ``parent`` as the wheel lays it out; its bin folder.

    That is ``pgserver/pginstall/{bin,lib,share}`` and, beside the package, ``pgserver.libs``,
    where the wheel keeps the libpq that initdb finds through its rpath ``$ORIGIN/../../../``.
    """
    install = parent / "pgserver" / "pginstall"
    for name in ("bin", "lib", "share"):
        shutil.copytree(PACKAGE / "pginstall" / name, install / name, symlinks=True)
    libs = PACKAGE.parent / "pgserver.libs"
    if libs.is_dir():
        shutil.copytree(libs, parent / "pgserver.libs", symlinks=True)
    return install / "bin"


def assert_postgres_16(server: Server) -> None:
    version = query(server, "SELECT version()")
    assert isinstance(version, str) and version.startswith("PostgreSQL 16."), version
    assert query(server, PLPGSQL) == 42  # a module of the installation loads


# --------------------------------------------------------------------------- finding them


def test_pgserver_bindir_is_the_wheels_bin_folder() -> None:
    found = binaries.pgserver_bindir()
    assert found == PACKAGE / "pginstall" / "bin"
    assert binaries.has_binaries(found)
    assert list(binaries.default_candidates())[-1] == found  # the last resort
    assert binaries.find_binaries(found) == found
    assert binaries.find_binaries(candidates=[found]) == found
    assert binaries.find_binaries(candidates=[]) is None


# --------------------------------------------------------------------------- running them


def test_the_wheels_binaries_start_a_cluster(scratch: Path) -> None:
    found = binaries.pgserver_bindir()
    assert found is not None
    base = scratch / "pg"
    with cluster.LocalCluster.start(base, bindir=found) as local:
        pid = local.pid
        assert pid is not None
        assert_postgres_16(local.server)
        if local.install_dir is None:  # else root, and the user cannot reach the virtualenv
            assert local.bindir == found
    assert process_gone(pid)
    assert processes_using(base) == []
    assert not base.exists()


def test_the_wheels_binaries_run_where_the_server_user_can_reach_them(scratch: Path) -> None:
    bindir = wheel_copy(scratch / "wheel")
    base = scratch / "pg"
    with cluster.LocalCluster.start(base, bindir=bindir) as local:
        assert local.install_dir is None and local.bindir == bindir
        pid = local.pid
        assert pid is not None
        assert os.readlink(f"/proc/{pid}/exe") == str(bindir / "postgres")
        assert_postgres_16(local.server)
        assert query(local.server, PKGLIBDIR) == str(bindir.parent / "lib" / "postgresql")
    assert process_gone(pid)
    assert processes_using(base) == [] and processes_using(bindir) == []
    assert not base.exists()
    shutil.rmtree(scratch / "wheel")


@root_only
def test_the_wheels_binaries_out_of_the_server_users_reach_are_copied(scratch: Path) -> None:
    # As in a virtualenv under /root: the wheel in a folder only root may enter.
    private = scratch / "private"
    private.mkdir(mode=0o700)
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    bindir = wheel_copy(private)
    base = scratch / "pg"
    with cluster.LocalCluster.start(base, bindir=bindir) as local:
        copy = base / "pginstall"
        assert local.install_dir == copy and local.bindir == copy / "bin"
        pid = local.pid
        assert pid is not None and uid_of(pid) != 0
        assert os.readlink(f"/proc/{pid}/exe") == str(copy / "bin" / "postgres")
        assert_postgres_16(local.server)
        # The binaries found lib and share beside themselves, in the copy.
        assert query(local.server, PKGLIBDIR) == str(copy / "lib" / "postgresql")
        assert query(local.server, SHAREDIR) == str(copy / "share" / "postgresql")
        # The wheel's out-of-tree libpq (pgserver.libs) came along; static libraries did not.
        for library in (private / "pgserver.libs").glob("*"):
            assert (copy / "lib" / library.name).is_file(), library.name
        assert sorted(p.name for p in copy.iterdir()) == ["bin", "lib", "share"]
        assert not list(copy.rglob("*.a"))
    assert process_gone(pid)
    assert processes_using(base) == [] and processes_using(private) == []
    assert not base.exists()
    shutil.rmtree(private)
