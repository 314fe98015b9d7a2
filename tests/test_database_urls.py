"""Database URLs: parsed into servers, and never shown with their password."""

from __future__ import annotations

import pytest

from guard.database.server import parse_url, redact
from guard.errors import FatalError


def test_redact_hides_passwords_in_the_userinfo_and_the_query() -> None:
    shown = redact("postgres://app:s3cret@db.local:5433/x?password=other&sslmode=require")
    assert "s3cret" not in shown and "other" not in shown
    assert shown == "postgres://app:***@db.local:5433/x?password=***&sslmode=require"


def test_a_unix_socket_url() -> None:
    server = parse_url("postgres://postgres@/postgres?host=/tmp/mg%20sock&port=5433")
    assert (server.host, server.port, server.user) == ("/tmp/mg sock", 5433, "postgres")
    assert server.is_local


def test_a_non_postgres_url_is_refused_without_its_password() -> None:
    with pytest.raises(FatalError) as caught:
        parse_url("mysql://root:hunter2@localhost/db?password=hunter3")
    assert "hunter2" not in str(caught.value) and "hunter3" not in str(caught.value)
