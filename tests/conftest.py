"""Shared fixtures: real database servers for the tests that need them.

MariaDB/MySQL is the platform's real source engine. Tests that need it use the
server at ``WAREHOUSE_TEST_MYSQL_URL`` (default: root on 127.0.0.1:3306). When
``CI`` is set a missing server is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

MYSQL_SERVER_URL = "mysql+pymysql://root@127.0.0.1:3306/"


def _server_url() -> str:
    return os.environ.get("WAREHOUSE_TEST_MYSQL_URL", MYSQL_SERVER_URL)


def _require_server(kind: str, probe: Callable[[], None]) -> None:
    try:
        probe()
    except Exception as exc:  # any failure to reach the server
        message = f"{kind} is not reachable ({str(exc).splitlines()[0]})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must provide it (.ci/run starts it)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """The MariaDB/MySQL server URL (no database); fails in CI when it is down."""
    url = _server_url()

    def probe() -> None:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
        finally:
            engine.dispose()

    _require_server("MariaDB/MySQL", probe)
    return url


@pytest.fixture
def mysql_database(mysql_server: str) -> Iterator[Callable[[str], str]]:
    """A factory of fresh, empty databases on the server; all are dropped afterwards."""
    created: list[str] = []
    engine = create_engine(mysql_server)

    def make(prefix: str = "test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with engine.begin() as conn:
            conn.execute(text(f"create database `{name}` character set utf8mb4"))
        created.append(name)
        return make_url(mysql_server).set(database=name).render_as_string(hide_password=False)

    yield make
    with engine.begin() as conn:
        for name in created:
            conn.execute(text(f"drop database if exists `{name}`"))
    engine.dispose()
