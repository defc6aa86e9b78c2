"""Where the test MariaDB and Redis are, and whether a missing one skips or fails.

With REQUIRE_SERVICES=1 (set by .ci/run) a missing service is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid

import pytest

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/nhis_test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/8")


def require(name: str, error: Exception) -> None:
    message = f"{name} is not reachable: {error}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (REQUIRE_SERVICES=1: failing instead of skipping)", pytrace=False)
    pytest.skip(message)


def mysql_database_url() -> str:
    """Create the test database if needed and return its URL (fails or skips if MariaDB is down)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(TEST_DATABASE_URL)
    server = create_engine(url.set(database=""), connect_args={"connect_timeout": 3})
    try:
        with server.connect() as conn:
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{url.database}` CHARACTER SET utf8mb4"))
    except Exception as exc:
        require("MariaDB", exc)
    finally:
        server.dispose()
    return url.render_as_string(hide_password=False)


def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        require("Redis", exc)
    return TEST_REDIS_URL


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
