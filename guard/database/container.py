"""A throwaway PostgreSQL in a Docker container, for machines without local PostgreSQL binaries.

:func:`docker_available` tells whether a Docker engine answers. :class:`DockerPostgres` runs the
official ``postgres`` image with trust authentication and the durability settings a throwaway
can do without, published on a free port of 127.0.0.1 only::

    with DockerPostgres.start(image="postgres:15") as pg:
        use(pg.server)

Leaving the block removes the container (``docker rm -f``); it runs with ``--rm`` as well, so an
engine restart does not keep it either.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from types import TracebackType

from guard.database.server import Server, connect_maintenance
from guard.errors import FatalError

NAME_PREFIX = "migration_guard_"
PROBE_TIMEOUT = 5.0
RUN_TIMEOUT = 600.0
"""``docker run`` may pull the image first."""
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0
SERVER_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
GONE_MARKERS = ("No such container", "is not running")


def _docker() -> str | None:
    return shutil.which("docker")


def docker_available(timeout: float = PROBE_TIMEOUT) -> bool:
    """True if ``docker`` is on PATH and its engine answers within ``timeout`` seconds."""
    docker = _docker()
    if docker is None:
        return False
    try:
        done = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _message(done: subprocess.CompletedProcess[str]) -> str:
    text = " ".join((done.stderr or done.stdout or "").split())
    return text or f"exit code {done.returncode}, no message"


class DockerPostgres:
    """A ``postgres`` container of our own, published on 127.0.0.1:<port>."""

    server: Server

    def __init__(self, docker: str, name: str, image: str, port: int) -> None:
        self.docker = docker
        self.name = name
        self.image = image
        self.container_id = ""
        """Set once ``docker run`` printed it; ``stop`` falls back to the name before that."""
        self.server = Server(host="127.0.0.1", port=port, user="postgres")
        self._stopped = False

    # ----------------------------------------------------------------- public API

    @classmethod
    def start(cls, *, image: str = "postgres:15", timeout: float = START_TIMEOUT) -> DockerPostgres:
        """Run the container and wait until it takes connections; FatalError if it does not.

        On any failure the container is removed before the error propagates.
        """
        docker = _docker()
        if docker is None:
            raise FatalError(
                "The `docker` command is not on PATH. Install Docker and start its engine, or "
                "use --db local (PostgreSQL binaries on this machine) or --db URL."
            )
        name = f"{NAME_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        pg = cls(docker, name, image, free_port())
        try:
            pg._run()
            pg._wait_ready(timeout)
        except BaseException:
            pg._remove(quiet=True)
            raise
        return pg

    def stop(self) -> None:
        """Remove the container (``docker rm -f``). Idempotent."""
        self._remove(quiet=False)

    def __enter__(self) -> DockerPostgres:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Leaving because of an error: report that one, not a failure to clean up after it.
        self._remove(quiet=exc_type is not None)

    # ----------------------------------------------------------------- internals

    def _docker_cmd(
        self, *args: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.docker, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise FatalError(
                f"`docker {args[0]}` did not answer within {timeout:.0f} s (container "
                f"{self.name}). Check that the Docker engine is healthy (`docker info`)."
            ) from None
        except OSError as exc:
            raise FatalError(f"Cannot run {self.docker}: {exc}.") from None

    def _run(self) -> None:
        argv = [
            "run",
            "-d",
            "--rm",
            "--name",
            self.name,
            "-e",
            "POSTGRES_HOST_AUTH_METHOD=trust",
            "-p",
            f"127.0.0.1:{self.server.port}:5432",
            self.image,
        ]
        for setting in SERVER_SETTINGS:
            argv += ["-c", setting]
        done = self._docker_cmd(*argv, timeout=RUN_TIMEOUT)
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not lines:
            raise FatalError(
                f"`docker run {self.image}` failed: {_message(done)}. Check that the Docker engine "
                "runs (`docker info`) and the image can be pulled, or use --db local / --db URL."
            )
        self.container_id = lines[-1]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        ref = self.container_id
        last = "no answer yet"
        while True:
            done = self._docker_cmd("exec", ref, "pg_isready", "-U", "postgres", "-h", "127.0.0.1")
            if done.returncode == 0:
                break
            last = _message(done)
            if any(marker in last for marker in GONE_MARKERS):
                raise FatalError(
                    f"The PostgreSQL container {self.name} ({self.image}) stopped while starting: "
                    f"{last}. Run `docker run --rm {self.image}` by hand to see why."
                )
            self._check_deadline(deadline, timeout, f"pg_isready: {last}")
            time.sleep(0.5)
        while True:
            try:
                connect_maintenance(self.server).close()
                return
            except FatalError as exc:
                last = str(exc)
            self._check_deadline(deadline, timeout, last)
            time.sleep(0.2)

    def _check_deadline(self, deadline: float, timeout: float, last: str) -> None:
        if time.monotonic() >= deadline:
            raise FatalError(
                f"The PostgreSQL container {self.name} ({self.image}) did not accept connections "
                f"on 127.0.0.1:{self.server.port} within {timeout:.0f} s ({last}). See "
                f"`docker logs {self.container_id or self.name}`."
            )

    def _remove(self, *, quiet: bool) -> None:
        if self._stopped:
            return
        self._stopped = True
        ref = self.container_id or self.name
        try:
            done = self._docker_cmd("rm", "-f", ref)
        except FatalError:
            if quiet:
                return
            raise
        if done.returncode != 0 and not quiet:
            message = _message(done)
            if "No such container" not in message:
                raise FatalError(
                    f"Could not remove the PostgreSQL container {self.name}: {message}. "
                    f"Remove it by hand with `docker rm -f {ref}`."
                )
