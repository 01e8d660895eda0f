"""The `gateway` command: serve, migrate, and the operator's merchant and key tools.

Every command reads the same settings. With no database/Redis URL it uses the embedded servers of
the data directory, starting them if no other process has, so `gateway keys create` works beside
a running `gateway serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import msgspec
import psycopg

from gateway import GatewayError, accounts
from gateway import settings as settings_module
from gateway.db import migrate
from gateway.embedded import embedded_services
from gateway.logging import configure as configure_logging
from gateway.services import Services, open_services
from gateway.settings import InvalidSetting, Settings
from processors import stripe
from workflows.accounts import add_account, list_accounts
from workflows.credentials import CredentialBox, CredentialError, new_master_key
from workflows.db import Q as QUERIES
from workflows.errors import AccountError as AccountProblem
from workflows.errors import RunError, RunNotReplayable
from workflows.model import HistoryEntry, Run

T = TypeVar("T")
SANDBOX_MERCHANT = "sandbox"


class CommandError(GatewayError):
    """A command could not do what it was asked; its message says why."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_module.load()
    except InvalidSetting as error:
        print(f"gateway: invalid setting {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        return int(args.run(settings, args) or 0)
    except (CommandError, accounts.AccountError, AccountProblem, CredentialError) as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 1
    except RunError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as error:
        print(f"gateway: cannot reach PostgreSQL: {str(error).strip()}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP gateway")
    serve.set_defaults(run=_serve)

    mig = commands.add_parser("migrate", help="apply database migrations")
    mig.set_defaults(run=_migrate)

    merchants = commands.add_parser("merchants", help="manage merchants").add_subparsers(
        required=True, metavar="ACTION"
    )
    create_merchant = merchants.add_parser("create", help="create a merchant")
    create_merchant.add_argument("name")
    create_merchant.set_defaults(run=_merchants_create)

    configure = merchants.add_parser("configure", help="set a merchant's processor and capture")
    configure.add_argument("name")
    configure.add_argument(
        "--processor", help="sandbox, manual, or the name of one of its processor accounts"
    )
    capture = configure.add_mutually_exclusive_group()
    capture.add_argument(
        "--capture-on-create",
        dest="capture_on_create",
        action="store_const",
        const=True,
        help="capture at once when a payment is authorized",
    )
    capture.add_argument(
        "--capture-on-request",
        dest="capture_on_create",
        action="store_const",
        const=False,
        help="wait for a capture call (the default)",
    )
    configure.set_defaults(run=_merchants_configure)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        required=True, metavar="ACTION"
    )
    create_key = keys.add_parser("create", help="create an API key (printed once)")
    who = create_key.add_mutually_exclusive_group(required=True)
    who.add_argument("--merchant", help="merchant name (a merchant key)")
    who.add_argument("--operator", action="store_true", help="an operator key for /admin/*")
    create_key.add_argument("--mode", choices=["sandbox", "live"], default=None)
    create_key.add_argument(
        "--scope",
        action="append",
        choices=accounts.SCOPES,
        help="grant only this scope (repeatable); default: all of them",
    )
    create_key.set_defaults(run=_keys_create)
    keys.add_parser("list", help="list API keys (never their secrets)").set_defaults(run=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_keys_revoke)
    processors = commands.add_parser("processors", help="manage processor accounts")
    accounts_ = processors.add_subparsers(required=True, metavar="ACTION")
    add = accounts_.add_parser("add", help="add a processor account to a merchant")
    add.add_argument("--merchant", required=True)
    add.add_argument("--name", required=True, help="e.g. stripe-main")
    add.add_argument("--type", required=True, choices=["stripe"], dest="kind")
    add.add_argument(
        "--secret-key-env",
        required=True,
        metavar="VAR",
        help="environment variable holding the secret key (never pass secrets as arguments)",
    )
    add.add_argument("--api-base", default=None, help="API base URL (default: the processor's)")
    add.add_argument(
        "--multicapture",
        action="store_true",
        help="the account has Stripe multicapture: allow several partial captures",
    )
    add.set_defaults(run=_processors_add)
    accounts_.add_parser("list", help="list processor accounts (never their secrets)").set_defaults(
        run=_processors_list
    )

    secret = commands.add_parser("secret-key", help="print a new master key for GATEWAY_SECRET_KEY")
    secret.set_defaults(run=_secret_key)

    workflows = commands.add_parser("workflows", help="inspect and replay workflow runs")
    runs = workflows.add_subparsers(required=True, metavar="ACTION")
    listing = runs.add_parser("list", help="list runs, most recently changed first")
    listing.add_argument("--state", choices=["running", "succeeded", "failed", "stuck"])
    listing.add_argument("--payment", help="only the runs of this payment id")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_workflows_list)
    show = runs.add_parser("show", help="a run and its history")
    show.add_argument("run_id")
    show.set_defaults(run=_workflows_show)
    replay = runs.add_parser("replay", help="resume a stuck run with the same processor key")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("run_id", nargs="?")
    target.add_argument("--all-stuck", action="store_true", help="replay every stuck run")
    replay.set_defaults(run=_workflows_replay)

    bench = commands.add_parser("bench", help="measure throughput and latency (see the README)")
    bench.add_argument("--duration", type=float, default=8.0, help="seconds per scenario")
    bench.add_argument(
        "--concurrency", default="4,8,16,64", help="connections, comma-separated for a sweep"
    )
    bench.add_argument("--processes", type=int, default=1, help="gateway processes")
    bench.add_argument("--latency-ms", type=int, default=300, help="sandbox processor latency")
    bench.add_argument(
        "--latency-concurrency", type=int, default=2000, help="connections of the latency run"
    )
    bench.add_argument("--latency-duration", type=float, default=10.0)
    bench.set_defaults(run=_bench)

    worker_parser = commands.add_parser("worker", help="resume runs that are due, until stopped")
    worker_parser.add_argument("--once", action="store_true", help="one pass, then exit")
    worker_parser.set_defaults(run=_worker)
    return parser


@contextlib.contextmanager
def _resolved(settings: Settings, *, need_redis: bool, migrated: bool = True) -> Iterator[Settings]:
    """`settings` with real URLs: the configured servers, or the data directory's embedded ones.

    An embedded database is brought up to date first (`migrated`); against real servers,
    migrations are a deploy step of their own (`gateway migrate`).
    """
    if settings.database_url and (settings.redis_url or not need_redis):
        yield settings
        return
    with embedded_services(
        settings.data_path,
        postgres=not settings.database_url,
        redis=need_redis and not settings.redis_url,
    ) as urls:
        if migrated and urls.database_url:
            migrate.apply(urls.database_url)
        yield msgspec.structs.replace(
            settings,
            database_url=settings.database_url or urls.database_url,
            redis_url=settings.redis_url or urls.redis_url or None,
        )


def _with_connection(
    settings: Settings, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]
) -> T:
    with _resolved(settings, need_redis=False) as resolved:
        database_url = resolved.database_url
        assert database_url is not None

        async def run() -> T:
            conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
            async with conn:
                return await work(conn)

        return asyncio.run(run())


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    with _resolved(settings, need_redis=False, migrated=False) as resolved:
        assert resolved.database_url is not None
        applied = migrate.apply(resolved.database_url)
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name}")
    print("schema is up to date" if not applied else f"{len(applied)} migration(s) applied")
    return 0


def _merchants_create(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: psycopg.AsyncConnection) -> accounts.Merchant:
        return await accounts.create_merchant(conn, args.name)

    merchant = _with_connection(settings, work)
    print(f"created merchant {merchant.name} ({merchant.id})")
    return 0


def _merchants_configure(settings: Settings, args: argparse.Namespace) -> int:
    if args.processor is None and args.capture_on_create is None:
        raise CommandError("nothing to configure: give --processor and/or a capture option")
    builtin = args.processor in (None, "sandbox", "manual")

    async def work(conn: psycopg.AsyncConnection) -> tuple[str, str, bool]:
        merchant = await accounts.find_merchant(conn, args.name)
        if not builtin:
            cur = await conn.execute(
                QUERIES["route_merchant_to_account"],
                {"merchant_name": merchant.name, "account": args.processor},
            )
            if await cur.fetchone() is None:
                raise CommandError(
                    f"{args.processor!r} is neither sandbox, manual, nor a processor account "
                    f"of {merchant.name} (see gateway processors list)"
                )
        cur = await conn.execute(
            QUERIES["configure_merchant"],
            {
                "name": merchant.name,
                "processor": args.processor if builtin else None,
                "capture_on_create": args.capture_on_create,
            },
        )
        row = await cur.fetchone()
        assert row is not None
        return row[1], row[2], row[3]

    name, processor, on_create = _with_connection(settings, work)
    capture = "at once on create" if on_create else "on request"
    print(f"merchant {name}: processor {processor}, capture {capture}")
    return 0


def _processors_add(settings: Settings, args: argparse.Namespace) -> int:
    secret = os.environ.get(args.secret_key_env, "")
    if not secret:
        raise CommandError(f"the environment variable {args.secret_key_env} is not set or empty")
    if args.kind == "stripe" and not secret.startswith(("sk_", "rk_")):
        raise CommandError(f"{args.secret_key_env} does not hold a Stripe secret key (sk_...)")
    box = CredentialBox(settings.secret_key)

    async def work(conn: psycopg.AsyncConnection) -> None:
        merchant = await accounts.find_merchant(conn, args.merchant)
        await add_account(
            conn,
            box,
            merchant_id=merchant.id,
            name=args.name,
            kind=args.kind,
            credentials={"secretKey": secret},
            settings={
                "apiBaseUrl": args.api_base or stripe.API_BASE,
                "multicapture": args.multicapture,
            },
        )

    _with_connection(settings, work)
    print(
        f"added {args.kind} account {args.name} to {args.merchant} (secret encrypted); route "
        f"payments to it with: gateway merchants configure {args.merchant} --processor {args.name}"
    )
    return 0


def _processors_list(settings: Settings, args: argparse.Namespace) -> int:
    listing = _with_connection(settings, list_accounts)
    print(f"{'MERCHANT':<20}{'NAME':<20}{'TYPE':<8}{'MULTICAPTURE':<14}{'CREATED':<21}API BASE")
    for account in listing:
        print(
            f"{account.merchant_name:<20}{account.name:<20}{account.kind:<8}"
            f"{'yes' if account.settings.get('multicapture') else 'no':<14}"
            f"{account.created_at:%Y-%m-%d %H:%M:%S}  {account.settings.get('apiBaseUrl', '')}"
        )
    return 0


def _secret_key(settings: Settings, args: argparse.Namespace) -> int:
    print(new_master_key())
    print(
        "# Set it as GATEWAY_SECRET_KEY and keep it safe: stored secrets need it.", file=sys.stderr
    )
    return 0


def _keys_create(settings: Settings, args: argparse.Namespace) -> int:
    if args.operator and (args.mode or args.scope):
        raise CommandError("operator keys have no --mode or --scope")
    if args.merchant and not args.mode:
        raise CommandError("a merchant key needs --mode sandbox or --mode live")

    async def work(conn: psycopg.AsyncConnection) -> accounts.NewKey:
        if args.operator:
            return await accounts.create_key(conn, kind="operator")
        merchant = await accounts.find_merchant(conn, args.merchant)
        scopes = tuple(dict.fromkeys(args.scope)) if args.scope else accounts.SCOPES
        return await accounts.create_key(
            conn, kind="merchant", merchant=merchant, mode=args.mode, scopes=scopes
        )

    key = _with_connection(settings, work)
    print(key.secret)
    what = "operator key" if key.kind == "operator" else f"{key.mode} key for {args.merchant}"
    print(f"# {what}, id {key.id}. Shown once: store it now.", file=sys.stderr)
    return 0


def _keys_list(settings: Settings, args: argparse.Namespace) -> int:
    keys = _with_connection(settings, accounts.list_keys)
    print(f"{'ID':<18}{'KIND':<10}{'MERCHANT':<20}{'MODE':<9}{'CREATED':<22}{'REVOKED':<22}SCOPES")
    for key in keys:
        scopes = "all" if set(key.scopes) == set(accounts.SCOPES) else ",".join(key.scopes) or "-"
        print(
            f"{key.id:<18}{key.kind:<10}{key.merchant_name or '-':<20}{key.mode or '-':<9}"
            f"{key.created_at:%Y-%m-%d %H:%M:%S}   "
            f"{f'{key.revoked_at:%Y-%m-%d %H:%M:%S}' if key.revoked_at else '-':<22}{scopes}"
        )
    return 0


def _keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: psycopg.AsyncConnection) -> None:
        await accounts.revoke_key(conn, args.key_id)

    _with_connection(settings, work)
    print(f"revoked {args.key_id}")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app

    with _resolved(settings, need_redis=True) as resolved:
        # Decided on the settings as given: once resolved, embedded servers have URLs too.
        resolved = msgspec.structs.replace(resolved, worker_in_process=settings.runs_worker)
        assert resolved.database_url is not None
        if settings.embedded:
            asyncio.run(_sandbox_banner(resolved))
        if resolved.processes > 1:
            # Worker processes build their app from the environment: hand them the URLs and
            # the decisions made here.
            os.environ.update(
                GATEWAY_DATABASE_URL=resolved.database_url,
                GATEWAY_REDIS_URL=resolved.redis_url or "",
                GATEWAY_WORKER_IN_PROCESS=str(resolved.runs_worker).lower(),
            )
            target: Any = "gateway.app:app_from_environment"
        else:
            target = create_app(resolved)
        uvicorn.run(
            target,
            factory=resolved.processes > 1,
            workers=resolved.processes,
            host=resolved.host,
            port=resolved.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=10,
        )
    return 0


async def _sandbox_banner(settings: Settings) -> None:
    """On first start of an embedded gateway, make a sandbox merchant and show its key once."""
    assert settings.database_url is not None
    conn = await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True)
    async with conn:
        try:
            merchant = await accounts.find_merchant(conn, SANDBOX_MERCHANT)
            key = None
        except accounts.UnknownMerchant:
            with contextlib.suppress(accounts.MerchantExists):
                await accounts.create_merchant(conn, SANDBOX_MERCHANT)
            merchant = await accounts.find_merchant(conn, SANDBOX_MERCHANT)
            key = await accounts.create_key(
                conn, kind="merchant", merchant=merchant, mode="sandbox"
            )
    base = f"http://{settings.host}:{settings.port}"
    lines = ["", f"Sandbox gateway on {base} (data in {settings.data_path})"]
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
            "Another one: gateway keys create --merchant sandbox --mode sandbox",
        ]
    print("\n".join(lines) + "\n", flush=True)


def _with_engine(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    with _resolved(settings, need_redis=True) as resolved:

        async def run() -> T:
            async with open_services(resolved) as services:
                return await work(services)

        return asyncio.run(run())


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


def _workflows_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Services) -> list[Run]:
        return await services.reads.list_runs(
            state=args.state, payment_id=args.payment, limit=args.limit
        )

    runs = _with_engine(settings, work)
    print(
        f"{'RUN':<26}{'KIND':<11}{'STATE':<11}{'POINT':<18}{'PAYMENT':<26}"
        f"{'AMOUNT':>9}  {'TRIES':>5}  {'RECOV':>5}  UPDATED"
    )
    for run in runs:
        print(
            f"{run.id:<26}{run.kind:<11}{run.state:<11}{run.recovery_point:<18}"
            f"{run.payment_id:<26}{run.amount:>9}  {run.attempts:>5}  {run.recoveries:>5}  "
            f"{_when(run.updated_at)}"
        )
    if not runs:
        print("(no runs)")
    return 0


def _workflows_show(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Services) -> tuple[Run, list[HistoryEntry]]:
        return await services.reads.run_with_history(args.run_id)

    run, history = _with_engine(settings, work)
    print(f"run {run.id}: {run.kind} of payment {run.payment_id} (merchant {run.merchant_id})")
    print(f"  state {run.state}, recovery point {run.recovery_point}, amount {run.amount}")
    print(f"  processor calls {run.attempts}, recoveries {run.recoveries}")
    print(f"  processor key {run.processor_key}")
    if run.state == "running":
        print(f"  lease {run.lease_owner or '-'} until {_when(run.lease_expires_at)}")
        print(f"  next attempt {_when(run.next_attempt_at)}")
    if run.last_error:
        print(f"  last error {run.last_error}")
    print("history:")
    for entry in history:
        detail = " ".join(
            f"{key}={value}" for key, value in entry.detail.items() if value is not None
        )
        print(f"  {entry.at:%Y-%m-%d %H:%M:%S.%f}  {entry.event:<20} {detail}")
    return 0


def _workflows_replay(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        if args.all_stuck:
            ids = [run.id for run in await services.reads.list_runs(state="stuck", limit=10_000)]
            if not ids:
                print("no stuck runs")
        else:
            ids = [args.run_id]
        refused = 0
        for run_id in ids:
            try:
                run = await services.engine.recovery.replay(run_id)
            except RunNotReplayable as error:
                print(f"gateway: refused: {error}", file=sys.stderr)
                refused += 1
                continue
            status = await services.engine.payments.status(run.merchant_id, run.payment_id)
            print(f"replayed {run.id}: {run.state} (payment {run.payment_id} is {status})")
        return 1 if refused else 0

    return _with_engine(settings, work)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from workflows import worker

    async def work(services: Services) -> int:
        if args.once:
            resumed = await services.engine.recovery.recover_due()
            print(f"resumed {resumed} run(s)")
            return 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await worker.run(services.engine, stop)
        return 0

    return _with_engine(settings, work)


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.bench import run as bench

    try:
        sweep = tuple(int(n) for n in args.concurrency.split(","))
    except ValueError:
        raise CommandError("--concurrency takes numbers separated by commas, e.g. 16,64") from None
    options = bench.Options(
        seconds=args.duration,
        concurrency=sweep,
        processes=args.processes,
        latency_ms=args.latency_ms,
        latency_concurrency=args.latency_concurrency,
        latency_seconds=args.latency_duration,
    )
    with _resolved(settings, need_redis=True) as resolved:
        report = bench.run(resolved, options, embedded=settings.embedded)
    bench.print_report(report)
    return 1 if report["correctness"]["mismatches"] else 0
