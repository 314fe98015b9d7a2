"""guard.container with the stand-in tests/bin/docker, which starts a REAL PostgreSQL.

No Docker engine runs on our machines; the stand-in records each call in
$FAKE_DOCKER_STATE/calls.jsonl and serves a real server on the published port, so the
connection and clean-up checks here are real ones.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.database import container
from guard.database.server import connect_maintenance
from guard.errors import FatalError
from tests.processes import process_gone

STAND_IN = Path(__file__).parent / "bin"


def calls(state: Path) -> list[list[str]]:
    path = state / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def running(state: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((state / "containers").glob("*.json"))]


def refused(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
    return False


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The stand-in first on PATH; its state folder. Fails the test if a container is left."""
    state = tmp_path / "docker-state"
    state.mkdir()
    monkeypatch.setenv("FAKE_DOCKER_STATE", str(state))
    monkeypatch.setenv("PATH", f"{STAND_IN}{os.pathsep}{os.environ.get('PATH', '')}")
    yield state
    left = running(state)
    for meta in left:  # clean up even when the test failed, then complain
        subprocess.run([str(STAND_IN / "docker"), "rm", "-f", meta["id"]], check=False)
    assert not left, f"containers left running: {[m['name'] for m in left]}"


def failing_docker(folder: Path, body: str) -> Path:
    """A ``docker`` that logs its arguments to ``folder/args`` and then runs ``body``."""
    folder.mkdir()
    script = folder / "docker"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{folder}/args"\n{body}')
    script.chmod(0o755)
    return folder


def test_docker_postgres_runs_answers_and_is_removed(fake_docker: Path) -> None:
    assert container.docker_available()
    with container.DockerPostgres.start() as pg:
        server = pg.server
        assert (server.host, server.user) == ("127.0.0.1", "postgres")
        conn = connect_maintenance(server)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            assert cur.fetchone()[0] == 1
            cur.execute("SHOW fsync")
            assert cur.fetchone()[0] == "off"
        finally:
            conn.close()
        [meta] = running(fake_docker)
        assert meta["id"] == pg.container_id
        assert meta["name"] == pg.name and pg.name.startswith(f"migration_guard_{os.getpid()}_")

    recorded = calls(fake_docker)
    [run] = [c for c in recorded if c[0] == "run"]
    assert run[:3] == ["run", "-d", "--rm"]
    assert run[run.index("--name") + 1] == meta["name"]
    assert "POSTGRES_HOST_AUTH_METHOD=trust" in run
    assert run[run.index("-p") + 1] == f"127.0.0.1:{server.port}:5432"
    image_at = run.index("postgres:15")
    assert run[image_at + 1 :] == [
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
    ]
    assert ["exec", meta["id"], "pg_isready", "-U", "postgres", "-h", "127.0.0.1"] in recorded
    assert recorded[-1] == ["rm", "-f", meta["id"]]

    assert running(fake_docker) == []
    assert process_gone(meta["pid"])
    assert not Path(meta["root"]).exists()
    assert refused(server.port)


def test_stop_is_idempotent_and_the_image_is_passed(fake_docker: Path) -> None:
    with container.DockerPostgres.start(image="postgres:16-alpine") as pg:
        [meta] = running(fake_docker)
        pg.stop()
        pg.stop()
        assert running(fake_docker) == []
        assert refused(pg.server.port)
    recorded = calls(fake_docker)
    assert "postgres:16-alpine" in next(c for c in recorded if c[0] == "run")
    assert [c for c in recorded if c[0] == "rm"] == [["rm", "-f", meta["id"]]]
    assert process_gone(meta["pid"])


def test_the_stand_in_lists_and_answers(fake_docker: Path) -> None:
    docker = str(STAND_IN / "docker")
    with container.DockerPostgres.start() as pg:
        listed = subprocess.run(
            [docker, "ps", "-q", "--filter", f"name={pg.name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert listed == [pg.container_id[:12]]
    listed_after = subprocess.run(
        [docker, "ps", "-q", "--filter", "name=migration_guard_"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert listed_after == []
    gone = subprocess.run(
        [docker, "exec", pg.container_id, "pg_isready"], capture_output=True, text=True
    )
    assert gone.returncode == 1 and "No such container" in gone.stderr


def test_docker_available_is_false_when_docker_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = failing_docker(
        tmp_path / "bin",
        'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2\nexit 1\n',
    )
    monkeypatch.setenv("PATH", str(folder))
    assert container.docker_available() is False
    assert (folder / "args").read_text().split()[0] == "version"


def test_docker_available_is_false_without_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert container.docker_available() is False


def test_docker_available_is_false_when_docker_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = failing_docker(tmp_path / "bin", "exec sleep 30\n")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}/usr/bin{os.pathsep}/bin")
    assert container.docker_available(timeout=0.5) is False


def test_a_failing_run_reports_dockers_message_and_removes_the_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = failing_docker(
        tmp_path / "bin",
        'echo "docker: Error response from daemon: pull access denied for nope." >&2\nexit 125\n',
    )
    monkeypatch.setenv("PATH", str(folder))
    with pytest.raises(FatalError) as caught:
        container.DockerPostgres.start(image="nope")
    message = str(caught.value)
    assert "pull access denied for nope" in message
    assert "docker run nope" in message
    args = (folder / "args").read_text().splitlines()
    assert args[0].startswith("run -d --rm --name migration_guard_")
    name = args[0].split()[4]
    assert args[-1] == f"rm -f {name}"


def test_no_docker_on_path_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FatalError, match="`docker` command is not on PATH"):
        container.DockerPostgres.start()
