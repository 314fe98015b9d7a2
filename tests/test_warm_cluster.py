"""guard.database.warm.WarmCluster against the real PostgreSQL binaries of this machine: no mocks.

Every test points MIGRATION_GUARD_CACHE_DIR at a folder of its own made with tempfile.mkdtemp()
and opened to 0755 (pytest's tmp_path is 0700: as root, the server's user could not enter it),
and checks that no process it started is left and removes the folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.database import binaries, cachedir, warm
from guard.database.providers import provide
from guard.database.server import Server, connect
from guard.database.throwaway import PREFIX, create_database
from guard.errors import FatalError
from tests.conftest import REPO
from tests.processes import process_gone, processes_using

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="only root runs the server as another user")

CACHE_DB = "migration_guard_cache_warm_test"


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The cache folder of the test (0755), through MIGRATION_GUARD_CACHE_DIR."""
    folder = Path(tempfile.mkdtemp(prefix="mg-warm-test-"))
    folder.chmod(0o755)
    monkeypatch.setenv(cachedir.CACHE_ENV, str(folder))
    try:
        yield folder
    finally:
        left = processes_using(folder)
        # A WarmCluster that a failed test left entered refuses: its processes are killed below.
        with contextlib.suppress(FatalError):
            cachedir.remove_warm_clusters(folder)
        for pid in processes_using(folder):
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    assert not left, f"processes left running in {folder}: {left}"


def query(server: Server, sql: str, dbname: str = "postgres") -> object:
    conn = connect(server, dbname)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchone()[0]
    finally:
        conn.close()


def databases(server: Server) -> set[str]:
    conn = connect(server, "postgres")
    try:
        cur = conn.cursor()
        cur.execute("SELECT datname FROM pg_database")
        return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def run_databases_left(cache: Path) -> list[str]:
    """The ``migration_guard_`` databases other than cached states in the warm cluster of
    ``cache`` (started for the look, and stopped again)."""
    with warm.WarmCluster(root=cache) as kept:
        return sorted(
            name
            for name in databases(kept.server)
            if name.startswith(PREFIX) and not name.startswith(f"{PREFIX}cache_")
        )


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def major() -> str:
    found = binaries.find_binaries()
    assert found is not None
    return binaries.postgres_major(found)


def wait_gone(pid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        assert time.monotonic() < deadline, f"process {pid} is still there"
        time.sleep(0.05)


# --------------------------------------------------------------------------- where it lives


def test_cache_root_follows_the_override_and_the_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(cachedir.CACHE_ENV, "/somewhere/else")
    assert cachedir.cache_root() == Path("/somewhere/else")
    monkeypatch.delenv(cachedir.CACHE_ENV)
    if IS_ROOT:
        assert cachedir.cache_root() == Path(f"/var/tmp/migration-guard-{os.geteuid()}")
    monkeypatch.setattr(cachedir, "is_root", lambda: False)
    monkeypatch.setenv("HOME", "/home/someone")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg/cache")
    assert cachedir.cache_root() == Path("/xdg/cache/migration-guard")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert cachedir.cache_root() == Path("/home/someone/.cache/migration-guard")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cachedir.cache_root() == Path("/home/someone/Library/Caches/migration-guard")


def test_the_socket_folder_is_derived_from_the_data_folder() -> None:
    short = Path("/var/tmp/migration-guard-0/cluster-15")
    assert cachedir.socket_dir_for(short) == Path("/var/tmp/migration-guard-0/cluster-15.sock")
    deep = Path("/home/someone") / ("d" * 80) / "cluster-15"
    fallback = cachedir.socket_dir_for(deep)
    assert fallback.parent == Path("/tmp") and fallback.name.startswith("mg-")
    assert cachedir.socket_dir_for(deep) == fallback
    assert cachedir.socket_dir_for(deep.with_name("cluster-16")) != fallback


# --------------------------------------------------------------------------- one run, then the next


def test_first_use_initialises_and_a_database_survives_a_second_use(cache: Path) -> None:
    with warm.WarmCluster() as first:
        pid = first.pid
        assert pid is not None and not process_gone(pid)
        assert first.initialised and first.state == "initialised now"
        assert first.data_dir == cache / f"cluster-{major()}"
        assert first.server.host == str(cache / f"cluster-{major()}.sock")
        assert query(first.server, "SHOW data_directory") == str(first.data_dir)
        assert query(first.server, "SHOW fsync") == "off"
        assert query(first.server, "SHOW listen_addresses") == ""
        if IS_ROOT:
            assert uid_of(pid) != 0
            assert first.data_dir.stat().st_uid == uid_of(pid)
            assert stat.S_IMODE(first.socket_dir.stat().st_mode) == 0o700
        create_database(first.server, CACHE_DB)
    # The last one out stopped the server (a fast, clean shutdown); the data folder stays.
    assert first.stopped
    assert process_gone(pid)
    assert processes_using(cache) == []
    assert (first.data_dir / "PG_VERSION").is_file()
    assert not (first.data_dir / "postmaster.pid").exists()
    assert not list(first.socket_dir.iterdir())

    with warm.WarmCluster() as second:
        assert not second.initialised and second.state == "warm"
        assert second.pid is not None and second.pid != pid
        assert CACHE_DB in databases(second.server)
        second_pid = second.pid
    assert process_gone(second_pid)
    assert processes_using(cache) == []


def test_overlapping_uses_share_one_server_and_the_last_one_out_stops_it(cache: Path) -> None:
    a = warm.WarmCluster().__enter__()
    try:
        b = warm.WarmCluster().__enter__()
    except BaseException:
        a.__exit__(None, None, None)
        raise
    try:
        assert b.already_running and b.state == "warm, already running"
        assert a.pid is not None and a.pid == b.pid
        a.__exit__(None, None, None)
        assert not a.stopped
        assert not process_gone(a.pid)
        assert query(b.server, "SELECT 41 + 1") == 42
        create_database(b.server, CACHE_DB)
    finally:
        b.__exit__(None, None, None)
    assert b.stopped
    assert process_gone(a.pid)
    assert processes_using(cache) == []


HOLDER = """
import sys
from guard.database import warm
with warm.WarmCluster() as kept:
    print(kept.pid, flush=True)
    sys.stdin.readline()
"""
"""Another run: enters, says the postmaster's pid, leaves when its stdin gets a line."""


def start_holder() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), f"the holder did not start: {line!r}"
    return proc, int(line)


def test_another_process_keeps_the_server_until_it_leaves(cache: Path) -> None:
    holder, pid = start_holder()
    try:
        with warm.WarmCluster() as here:
            assert here.already_running and here.pid == pid
        assert not here.stopped and not process_gone(pid)
        with warm.WarmCluster() as again:  # the holder still uses it
            assert again.pid == pid
            assert query(again.server, "SELECT 1") == 1
        assert not process_gone(pid)
    finally:
        assert holder.stdin is not None
        holder.stdin.write("done\n")
        holder.communicate(timeout=60)
    assert holder.returncode == 0
    wait_gone(pid)
    assert processes_using(cache) == []


def test_a_run_killed_hard_leaves_the_server_to_the_next_run(cache: Path) -> None:
    holder, pid = start_holder()
    holder.kill()  # its lock goes with it; the server, not its child, keeps running
    holder.wait()
    assert not process_gone(pid)
    with warm.WarmCluster() as next_run:
        assert next_run.already_running and next_run.pid == pid
    assert next_run.stopped
    assert process_gone(pid)
    assert processes_using(cache) == []


# --------------------------------------------------------------------------- what a crash leaves


def test_a_stale_postmaster_pid_after_sigkill_is_recovered(cache: Path) -> None:
    with warm.WarmCluster() as first:
        pid = first.pid
        assert pid is not None
        create_database(first.server, CACHE_DB)
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
    assert not first.stopped  # nothing was left to stop
    assert (first.data_dir / "postmaster.pid").is_file()  # stale

    with warm.WarmCluster() as second:  # the killed server's children may still be exiting
        assert not second.initialised and second.state == "warm"
        assert CACHE_DB in databases(second.server)
        second_pid = second.pid
    assert second_pid is not None and process_gone(second_pid)

    # A stale pid file whose number belongs to a live process that is no postmaster of ours.
    (second.data_dir / "postmaster.pid").write_text(f"{os.getpid()}\n{second.data_dir}\n")
    with warm.WarmCluster() as third:
        assert third.pid != os.getpid() and not third.initialised
        assert CACHE_DB in databases(third.server)
    assert processes_using(cache) == []


def test_a_half_initialised_data_folder_is_rebuilt(cache: Path) -> None:
    data_dir = cache / f"cluster-{major()}"
    for folder in (data_dir / "base", data_dir / "global"):
        folder.mkdir(parents=True)
    (data_dir / "postgresql.conf").write_text("# initdb was killed before PG_VERSION\n")
    unfinished = cache / f"cluster-{major()}.init-12345"
    (unfinished / "base").mkdir(parents=True)
    with warm.WarmCluster() as kept:
        assert kept.initialised and kept.rebuilt_because is None
        assert (data_dir / "PG_VERSION").read_text().strip() == major()
        assert query(kept.server, "SELECT 1") == 1
    assert not unfinished.exists()
    assert sorted(p.name for p in cache.glob("cluster-*.init-*")) == []
    assert processes_using(cache) == []


def test_a_data_folder_that_does_not_start_is_rebuilt(cache: Path) -> None:
    with warm.WarmCluster() as first:
        create_database(first.server, CACHE_DB)
    with (first.data_dir / "postgresql.conf").open("a") as conf:
        conf.write("this_is_no_setting = 1\n")
    with warm.WarmCluster() as second:
        assert second.initialised and second.rebuilt_because is not None
        assert "this_is_no_setting" in second.rebuilt_because
        assert second.state.startswith("initialised now; the cached cluster did not start")
        assert CACHE_DB not in databases(second.server)
    assert processes_using(cache) == []


# --------------------------------------------------------------------------- clean


def test_remove_warm_clusters_removes_them_and_refuses_while_in_use(cache: Path) -> None:
    assert cachedir.remove_warm_clusters() == []
    (cache / "unrelated.txt").write_text("stays")
    with warm.WarmCluster() as kept:
        with pytest.raises(FatalError, match="in progress"):
            cachedir.remove_warm_clusters()
        assert query(kept.server, "SELECT 1") == 1
        assert kept.data_dir.is_dir()
    removed = cachedir.remove_warm_clusters()
    assert kept.data_dir in removed and kept.lock_path in removed
    assert sorted(p.name for p in cache.iterdir()) == ["unrelated.txt"]
    assert cachedir.remove_warm_clusters() == []


def test_remove_warm_clusters_stops_a_server_nobody_uses(cache: Path) -> None:
    holder, pid = start_holder()
    holder.kill()
    holder.wait()
    assert not process_gone(pid)
    removed = cachedir.remove_warm_clusters()
    assert cache / f"cluster-{major()}" in removed
    assert process_gone(pid)
    assert list(cache.iterdir()) == []


def test_a_long_cache_folder_puts_the_socket_in_a_short_one(cache: Path) -> None:
    deep = cache / ("d" * 60) / ("e" * 60)
    with warm.WarmCluster(root=deep) as first:
        socket_dir = Path(first.server.host)
        assert socket_dir.parent == Path("/tmp") and socket_dir.name.startswith("mg-")
        assert socket_dir == cachedir.socket_dir_for(first.data_dir)
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        assert query(first.server, "SELECT 1") == 1
    with warm.WarmCluster(root=deep) as second:
        assert second.server.host == str(socket_dir) and not second.initialised
    removed = cachedir.remove_warm_clusters(deep)
    assert socket_dir in removed and not socket_dir.exists()


@root_only
def test_as_root_a_cache_folder_the_server_user_cannot_reach_is_a_clear_error(
    cache: Path,
) -> None:
    private = cache / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(FatalError) as caught:
        warm.WarmCluster(root=private / "cache").__enter__()
    assert str(private) in str(caught.value) and cachedir.CACHE_ENV in str(caught.value)
    assert processes_using(cache) == []


@root_only
def test_as_root_a_cache_folder_others_may_write_is_refused(cache: Path) -> None:
    shared = cache / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(FatalError, match="writable by root only"):
        warm.WarmCluster(root=shared).__enter__()
    assert list(shared.iterdir()) == []


# --------------------------------------------------------------------------- providers.provide


def test_provide_local_uses_the_warm_cluster_and_says_so(cache: Path) -> None:
    with provide("local", None) as first:
        assert first.provider == "local"
        assert f"in {cache / f'cluster-{major()}'} (initialised now)" in first.reason
        assert first.reason.startswith("local cluster from ")
        create_database(first.server, CACHE_DB)
    assert processes_using(cache) == []
    with provide("local", None) as second:
        assert second.reason.endswith("(warm)")
        assert CACHE_DB in databases(second.server)
    with provide("local", None, warm=False, scratch_dir=str(cache)) as throwaway:
        assert throwaway.reason.startswith("throwaway cluster from ")
        assert CACHE_DB not in databases(throwaway.server)
    assert processes_using(cache) == []
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith("cluster-")) == []


@root_only
def test_as_root_binaries_the_server_user_cannot_reach_are_copied_once(cache: Path) -> None:
    from tests.test_cluster import private_installation

    private = Path(tempfile.mkdtemp(prefix="mg-warm-private-"))  # 0700
    try:
        bindir = private_installation(private)
        with warm.WarmCluster(bindir=bindir) as first:
            copies = sorted(cache.glob("pginstall-*"))
            assert len(copies) == 1 and (copies[0] / "COMPLETE").is_file()
            assert first.source_bindir == bindir and first.bindir == copies[0] / "bin"
            pid = first.pid
            assert pid is not None
            assert os.readlink(f"/proc/{pid}/exe") == str(copies[0] / "bin" / "postgres")
            assert query(first.server, "SELECT 1") == 1
        made = copies[0].stat().st_ino
        with warm.WarmCluster(bindir=bindir) as second:  # the copy is reused
            assert second.bindir == copies[0] / "bin"
            assert query(second.server, "SELECT 1") == 1
        assert sorted(cache.glob("pginstall-*")) == copies
        assert copies[0].stat().st_ino == made
        assert processes_using(private) == []
        assert copies[0] in cachedir.remove_warm_clusters()
    finally:
        subprocess.run(["rm", "-rf", str(private)], check=False)
