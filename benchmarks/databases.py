"""The PostgreSQL server of the plain Django measurements, and the throwaway databases on it.

Every database made here is named ``bench_seed_<pid>_<n>`` and dropped by ``Databases.close``,
whatever happened in between.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import psycopg2
from psycopg2 import sql

PREFIX = "bench_seed_"


class ServerError(Exception):
    """The server does not answer: one sentence to show."""


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> Server:
        parsed = urlparse(url)
        if parsed.scheme not in ("postgres", "postgresql"):
            raise ValueError(f"not a postgres:// URL: {url}")
        query = parse_qs(parsed.query)
        host = query.get("host", [parsed.hostname or "127.0.0.1"])[0]
        port = int(query.get("port", [str(parsed.port or 5432)])[0])
        return cls(host=host, port=port, user=unquote(parsed.username or "postgres"),
                   password=unquote(parsed.password or ""),
                   dbname=parsed.path.lstrip("/") or "postgres")

    def connect(self, dbname: str | None = None) -> Any:
        try:
            conn = psycopg2.connect(host=self.host, port=self.port, user=self.user,
                                    password=self.password, dbname=dbname or self.dbname)
        except psycopg2.OperationalError as exc:
            raise ServerError(f"cannot connect to {self.user}@{self.host}:{self.port}: "
                              f"{str(exc).strip()}") from exc
        conn.autocommit = True
        return conn

    def django_env(self, name: str) -> dict[str, str]:
        """The variables the generated settings read, pointing Django at database ``name``."""
        return {"BENCH_DB_NAME": name, "BENCH_DB_HOST": self.host,
                "BENCH_DB_PORT": str(self.port), "BENCH_DB_USER": self.user,
                "BENCH_DB_PASSWORD": self.password}

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return list(cur.fetchall())
        finally:
            conn.close()

    def version(self) -> str:
        return str(self.query("SHOW server_version")[0][0])

    def database_names(self, like: str) -> set[str]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (like,))
                return {row[0] for row in cur.fetchall()}
        finally:
            conn.close()


class Databases:
    """Creates throwaway databases on a server and drops every one of them on close."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.created: list[str] = []
        self._count = 0

    def create(self) -> str:
        self._count += 1
        name = f"{PREFIX}{os.getpid()}_{self._count}"
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        force = sql.SQL(" WITH (FORCE)") if self._server_major() >= 13 else sql.SQL("")
        self._execute(sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force))
        self.created.remove(name)

    def close(self) -> None:
        for name in list(self.created):
            self.drop(name)

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _server_major(self) -> int:
        return int(self.server.version().split(".")[0].split()[0])

    def _execute(self, statement: sql.Composable) -> None:
        conn = self.server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()
