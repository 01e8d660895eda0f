"""`gateway serve`, `gateway migrate` and `gateway secret-key`."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import socket
from typing import Any

import click
import msgspec
import psycopg

from gateway import accounts, runtime, tracing
from gateway.cli.common import ConfigError, resolved, settings, with_connection
from gateway.db import migrate as migrations
from gateway.http.protocol import BoundedHttpToolsProtocol
from gateway.settings import PREFIX, Settings, previous_secret_keys
from workflows import merchants, notifications
from workflows.accounts import rotate_secrets
from workflows.credentials import CredentialBox, new_master_key
from workflows.db import Connection

SANDBOX_MERCHANT = "sandbox"


def _settings_help() -> str:
    """Every GATEWAY_* variable and its default, for `serve --help`."""
    defaults = Settings()
    lines = ["\b", "Environment (GATEWAY_*, read once at start; a bad value is exit 2):"]
    for name in Settings.__struct_fields__:
        value = getattr(defaults, name)
        shown = "(embedded)" if name in ("database_url", "redis_url") else value
        if name == "secret_key":
            shown = "(none: processor secrets cannot be stored)"
        elif name == "secret_key_previous":
            shown = "(none)"
        elif name == "worker_in_process":
            shown = "(yes when embedded)"
        lines.append(f"  {PREFIX + name.upper():<42} {shown}")
    return "\n".join(lines)


@click.command(epilog=_settings_help())
def serve() -> None:
    """Run the HTTP gateway (and, when embedded, the recovery worker beside it).

    With no GATEWAY_DATABASE_URL / GATEWAY_REDIS_URL it starts (or joins) embedded PostgreSQL and
    Valkey under GATEWAY_DATA_DIR, and on first start makes a sandbox merchant and prints its key.
    """
    import uvicorn

    from gateway.app import create_app

    given = settings()
    tracing.require(given)
    _check_port_free(given.host, given.port)
    with resolved(given, need_redis=True) as ready:
        # Decided on the settings as given: once resolved, embedded servers have URLs too.
        ready = msgspec.structs.replace(ready, worker_in_process=given.runs_worker)
        assert ready.database_url is not None
        if given.embedded:
            asyncio.run(_sandbox_banner(ready))
        if ready.processes > 1:
            # Worker processes build their app from the environment: hand them the URLs and
            # the decisions made here.
            # Their metrics are written per process under one directory, which a scrape of any
            # of them adds up (emptied first: the figures of processes gone are not counted).
            metrics_dir = ready.data_path / "prometheus"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            os.environ.update(
                GATEWAY_DATABASE_URL=ready.database_url,
                GATEWAY_REDIS_URL=ready.redis_url or "",
                GATEWAY_WORKER_IN_PROCESS=str(ready.runs_worker).lower(),
                PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            )
            target: Any = "gateway.app:app_from_environment"
        else:
            target = create_app(ready)
            runtime.tune_collector()
        # uvicorn re-raises the signal that stopped it once it has shut down: let SIGTERM unwind
        # like Ctrl-C does, so that embedded servers this process started are stopped too.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        uvicorn.run(
            target,
            factory=ready.processes > 1,
            workers=ready.processes,
            host=ready.host,
            port=ready.port,
            loop="uvloop",
            http=BoundedHttpToolsProtocol,
            lifespan="on",
            access_log=False,
            server_header=False,  # no banner naming the server software
            log_config=None,
            timeout_graceful_shutdown=10,
        )


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _check_port_free(host: str, port: int) -> None:
    """Refuse at once, before any server is started, when the port is taken."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is in use (another gateway?): stop it, or set "
                    f"GATEWAY_PORT to a free port"
                ) from None
            raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None


async def _sandbox_banner(ready: Settings) -> None:
    """On first start of an embedded gateway, make a sandbox merchant and show its key once."""
    assert ready.database_url is not None
    conn = await psycopg.AsyncConnection.connect(ready.database_url, autocommit=True)
    async with conn:
        try:
            merchant = await merchants.find_merchant(conn, SANDBOX_MERCHANT)
            key = None
        except merchants.UnknownMerchant:
            with contextlib.suppress(merchants.MerchantExists):
                await merchants.create_merchant(conn, SANDBOX_MERCHANT)
            merchant = await merchants.find_merchant(conn, SANDBOX_MERCHANT)
            key = await accounts.create_key(
                conn,
                kind="merchant",
                merchant=merchant,
                mode="sandbox",
                actor="gateway serve (sandbox set-up)",
            )
    base = f"http://{ready.host}:{ready.port}"
    lines = ["", f"Sandbox gateway on {base} (data in {ready.data_path})"]
    if key is not None:
        lines += [
            f"Sandbox merchant {merchant.name!r} created. Its API key, shown this once:",
            "",
            f"    {key.secret}",
            "",
            "Try it (more in the README):",
            "",
            f"    export API_KEY='{key.secret}'",
            f'    curl -s {base}/payment-instruments -H "X-API-KEY: $API_KEY" \\',
            """      -d '{"number": "4111111111111111", "expirationMonth": "12",""",
            """           "expirationYear": "2030", "cvv": "123"}'""",
            f'    curl -s {base}/payments -H "X-API-KEY: $API_KEY" \\',
            """      -d '{"orderId": "order-1", "currencyCode": "EUR", "amount": 1000,""",
            """           "paymentMethodToken": "<token from above>"}'""",
        ]
    else:
        lines += [
            f"Sandbox merchant {merchant.name!r} exists; its key was shown on first start.",
            "Another one: gateway keys create --merchant sandbox",
        ]
    click.echo("\n".join(lines) + "\n")


@click.command()
def migrate() -> None:
    """Apply database migrations (a deploy step with real servers; automatic when embedded)."""
    with resolved(settings(), need_redis=False, migrated=False) as ready:
        assert ready.database_url is not None
        applied = migrations.apply(ready.database_url)
    for migration in applied:
        click.echo(f"applied {migration.version:04d}_{migration.name}")
    click.echo("schema is up to date" if not applied else f"{len(applied)} migration(s) applied")


@click.group("secret-key", invoke_without_command=True)
@click.pass_context
def secret_key(context: click.Context) -> None:
    """Print a new master key for GATEWAY_SECRET_KEY (or rotate to it: see `rotate`)."""
    if context.invoked_subcommand is None:
        click.echo(new_master_key())
        click.echo(
            "# Set it as GATEWAY_SECRET_KEY and keep it safe: stored secrets need it.", err=True
        )


@secret_key.command()
@click.option("--merchant", help="only this merchant's accounts (by name)")
def rotate(merchant: str | None) -> None:
    """Re-seal every processor secret under GATEWAY_SECRET_KEY.

    \b
    To change the master key:
      1. GATEWAY_SECRET_KEY=<new> GATEWAY_SECRET_KEY_PREVIOUS=<old> on every process;
      2. gateway secret-key rotate (with both set);
      3. drop GATEWAY_SECRET_KEY_PREVIOUS.
    """
    current = settings()
    box = CredentialBox(current.secret_key, previous_secret_keys(current))

    async def work(conn: Connection) -> tuple[int, int]:
        merchant_id = (await merchants.find_merchant(conn, merchant)).id if merchant else None
        accounts = await rotate_secrets(conn, box, merchant_id)
        async with conn.transaction():
            endpoints = await notifications.reseal_endpoint_secrets(conn, box, merchant_id)
        return accounts, endpoints

    accounts, endpoints = with_connection(work)
    click.echo(
        f"re-sealed {accounts} processor secret(s) and {endpoints} webhook endpoint(s) under "
        f"master key {box.key_id}"
    )
