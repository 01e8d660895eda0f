"""Fixtures shared by every test: real PostgreSQL and Redis, once per session.

With GATEWAY_DATABASE_URL and GATEWAY_REDIS_URL set, the tests use those servers (they must be
disposable: tests create merchants and flush Redis). Otherwise they start the embedded servers
in a temporary data directory, exactly as `make run` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway import settings as settings_module
from gateway.db import migrate
from gateway.embedded import embedded_services
from gateway.logging import configure
from gateway.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without its GATEWAY_* settings, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(variables)
    return env


def gateway_env(settings: Settings, **variables: str) -> dict[str, str]:
    """The environment of a `gateway` command on the test session's PostgreSQL and Redis."""
    assert settings.database_url and settings.redis_url
    return clean_env(
        GATEWAY_DATABASE_URL=settings.database_url,
        GATEWAY_REDIS_URL=settings.redis_url,
        **variables,
    )


def run_gateway(
    settings: Settings, *args: str, extra_env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS` as an operator would run it, on the session's servers."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        env=gateway_env(settings, **(extra_env or {})),
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    database_url = os.environ.get("GATEWAY_DATABASE_URL")
    redis_url = os.environ.get("GATEWAY_REDIS_URL")
    if database_url and redis_url:
        migrate.apply(database_url)
        yield database_url, redis_url
        return
    with embedded_services(tmp_path_factory.mktemp("data")) as urls:
        migrate.apply(urls.database_url)
        yield urls.database_url, urls.redis_url


@pytest.fixture(scope="session")
def settings(servers: tuple[str, str]) -> Settings:
    configure("warning")
    base = settings_module.load({})
    import msgspec

    return msgspec.structs.replace(
        base,
        database_url=servers[0],
        redis_url=servers[1],
        # Deterministic tests: no waits between retries, recovery due at once, and no worker of
        # its own in the app (tests run worker passes themselves).
        processor_backoff_seconds=0,
        workflow_recovery_backoff_seconds=0,
        settlement_poll_seconds=0,
        worker_in_process=False,
        # The suite's many refused keys all come from one client address: the throttle's own
        # tests set a limit of their own.
        auth_failures_per_minute=1_000_000,
        requests_per_key_per_minute=100_000_000,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[object]:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True)
    async with conn:
        yield conn
