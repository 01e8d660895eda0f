"""The sandbox processor: Primer's test cards, and triggers that exercise every failure path.

It behaves like a real processor with its own ledger (tables `sandbox_operations` and
`sandbox_calls`): an operation is done at most once per processor key, a repeat with the same
key answers what was done, and every call received is recorded so that tests can count them.

Test cards (any future expiry, any 3-digit CVV) decide authorizations:

| outcome | cards |
|---|---|
| authorized | 4111111111111111, 4242424242424242, 5252525252525258, 5555555555554444 |
| declined (ISSUER_DECLINED) | 4000000000000002, 5100000000000008 |
| failed (APPLICATION_ERROR) | 4000000000000010, 5100000000000016 |
| 3-D Secure asked (PENDING, then `POST /payments/{id}/resume`) | 4000000000003220 |

A 3-D Secure payment is authorized when it is resumed, declined if the resume token is
`sandbox_3ds_failed` (the customer failed the challenge).

Triggers are keys of the payment's `metadata`. Calls are counted per payment: every call the
sandbox receives for it, or with `sandbox_fault_on` only the calls of that operation (and the
status queries about it).

- `sandbox_fault_on`: `authorize`, `capture`, `cancel`, `refund` or `adjust`: the triggers apply to
  that operation only (default: to every call).
- `sandbox_latency_ms`: each call takes this long (after the sandbox has done the work).
- `sandbox_transient_errors`: the first N calls answer 503 without doing anything.
- `sandbox_timeouts`: the first N calls do the work and then time out, so the gateway does not
  know the outcome (a status query counts as a call, and times out too).
- `sandbox_async_settlement`: captures answer SETTLING; the settlement is confirmed by the next
  status query (the worker asks).
- `sandbox_key_lifetime_seconds`: the sandbox honours a processor key this long (as Stripe does
  for 24 h), then forgets it: a repeat is done again, as a new operation. It still answers status
  questions about what it did.
- `sandbox_status_unavailable`: status questions cannot be answered (they time out).

A merchant may also add sandbox processor accounts (`gateway processors add --type sandbox`), each
its own simulated processor, whose settings give it a behaviour, so that every routing and
fallback path can be tried without a network:

- `authorize`: `by_card` (the test cards above, the default), `soft_decline` (every authorization
  declined, DO_NOT_HONOR, a soft decline) or `hard_decline` (LOST_OR_STOLEN_CARD, a hard one).
- `unreachable`: `true`: the account is down, every call fails before reaching it (a 503).
- `timesOut`: `true`: authorizations are done, then time out (the outcome unknown until asked).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal

import msgspec
from psycopg_pool import AsyncConnectionPool

from processors.base import (
    Call,
    Capabilities,
    DeclineCode,
    DeclineType,
    Outcome,
    Resources,
    Result,
    StatusReason,
    StatusReasonType,
)
from processors.errors import OutcomeUnknown, TransientError

# number -> (network, outcome of an authorization)
TEST_CARDS: dict[str, tuple[str, Outcome]] = {
    "4111111111111111": ("VISA", Outcome.AUTHORIZED),
    "4242424242424242": ("VISA", Outcome.AUTHORIZED),
    "5252525252525258": ("MASTERCARD", Outcome.AUTHORIZED),
    "5555555555554444": ("MASTERCARD", Outcome.AUTHORIZED),
    "4000000000000002": ("VISA", Outcome.DECLINED),
    "5100000000000008": ("MASTERCARD", Outcome.DECLINED),
    "4000000000000010": ("VISA", Outcome.FAILED),
    "5100000000000016": ("MASTERCARD", Outcome.FAILED),
    "4000000000003220": ("VISA", Outcome.PENDING),
}
THREE_DS = "3DS_AUTHENTICATION"
FAILED_CHALLENGE = "sandbox_3ds_failed"
# The sandbox's BIN data: the issuer country of its test cards (by their first six digits).
ISSUER_COUNTRIES = {
    "411111": "US",
    "424242": "US",
    "525252": "GB",
    "555555": "DE",
    "400000": "FR",
    "510000": "NL",
}
# The sandbox never sees a card number: it knows a test card by what the gateway kept of it.
_BY_FIRST6_LAST4 = {
    (number[:6], number[-4:]): outcome for number, (_, outcome) in TEST_CARDS.items()
}

DECLINED = StatusReason(
    StatusReasonType.ISSUER_DECLINED,
    DeclineType.SOFT_DECLINE,
    DeclineCode.DECLINED,
    "Declined by the issuer (sandbox test card)",
)
SOFT_DECLINED = StatusReason(
    StatusReasonType.ISSUER_DECLINED,
    DeclineType.SOFT_DECLINE,
    DeclineCode.DO_NOT_HONOR,
    "Do not honor (sandbox account set to soft_decline)",
)
HARD_DECLINED = StatusReason(
    StatusReasonType.ISSUER_DECLINED,
    DeclineType.HARD_DECLINE,
    DeclineCode.LOST_OR_STOLEN_CARD,
    "Lost or stolen card (sandbox account set to hard_decline)",
)
FAILED = StatusReason(
    StatusReasonType.APPLICATION_ERROR,
    None,
    DeclineCode.ERROR,
    "The processor failed to handle the request (sandbox test card)",
)

_RECORD_CALL = """
INSERT INTO sandbox_calls (reference, id, processor_key, verb, amount)
VALUES (%(reference)s, %(id)s, %(processor_key)s, %(verb)s, %(amount)s)
"""
_COUNT_CALLS = """
SELECT count(*) FROM sandbox_calls
WHERE reference = %(reference)s AND (%(fault_on)s::text IS NULL OR verb = ANY (%(verbs)s))
"""
_DO_ONCE = """
INSERT INTO sandbox_operations
    (processor_key, reference, verb, amount, outcome, processor_transaction_id, settled)
VALUES (%(processor_key)s, %(reference)s, %(verb)s, %(amount)s, %(outcome)s,
        %(processor_transaction_id)s, %(settled)s)
ON CONFLICT (processor_key) WHERE NOT forgotten DO NOTHING
"""
# The call recorded and the operation done (at most once per key) in one statement. Its answer is
# the operation's row: the one inserted now, or the one done before.
_RECORD_AND_DO = """
WITH received AS (
    INSERT INTO sandbox_calls (reference, id, processor_key, verb, amount)
    VALUES (%(reference)s, %(id)s, %(processor_key)s, %(verb)s, %(amount)s)
), done AS (
    INSERT INTO sandbox_operations
        (processor_key, reference, verb, amount, outcome, processor_transaction_id, settled)
    VALUES (%(processor_key)s, %(reference)s, %(verb)s, %(amount)s, %(outcome)s,
            %(processor_transaction_id)s, %(settled)s)
    ON CONFLICT (processor_key) WHERE NOT forgotten DO NOTHING
    RETURNING outcome, processor_transaction_id, settled
)
SELECT outcome, processor_transaction_id, settled FROM done
UNION ALL
SELECT outcome, processor_transaction_id, settled FROM sandbox_operations
WHERE processor_key = %(processor_key)s AND NOT forgotten AND NOT EXISTS (SELECT 1 FROM done)
"""
_FIND = """
SELECT outcome, processor_transaction_id, settled FROM sandbox_operations
WHERE processor_key = %(processor_key)s AND NOT forgotten
"""
# What was last done with a key, forgotten or not: the answer to a status question.
_LAST_DONE = """
SELECT outcome, processor_transaction_id, settled FROM sandbox_operations
WHERE processor_key = %(processor_key)s ORDER BY created_at DESC LIMIT 1
"""
_FORGET = """
UPDATE sandbox_operations SET forgotten = true
WHERE processor_key = %(processor_key)s AND NOT forgotten
  AND created_at <= clock_timestamp() - make_interval(secs => %(lifetime)s)
"""
_SETTLE = "UPDATE sandbox_operations SET settled = true WHERE processor_key = %(processor_key)s"
# The challenge answered: a pending authorization becomes what the customer made of it.
_CHALLENGED = """
UPDATE sandbox_operations SET outcome = %(outcome)s
WHERE processor_key = %(processor_key)s AND verb = 'authorize' AND outcome = 'PENDING'
"""


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """A sandbox account has no secret."""


class Settings(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """A sandbox account's behaviour (the module's docstring); a setting it does not know is
    refused, not ignored."""

    authorize: Literal["by_card", "soft_decline", "hard_decline"] = "by_card"
    unreachable: bool = False
    times_out: bool = False


@dataclass(frozen=True)
class Triggers:
    fault_on: str | None = None
    latency_ms: int = 0
    transient_errors: int = 0
    timeouts: int = 0
    async_settlement: bool = False
    key_lifetime_seconds: int | None = None
    status_unavailable: bool = False

    @classmethod
    def of(cls, metadata: dict[str, Any]) -> Triggers:
        def number(name: str, ceiling: int) -> int:
            value = metadata.get(name, 0)
            return max(0, min(int(value), ceiling)) if isinstance(value, int | str) else 0

        fault_on = metadata.get("sandbox_fault_on")
        return cls(
            fault_on=fault_on
            if fault_on in ("authorize", "capture", "cancel", "refund", "adjust")
            else None,
            latency_ms=number("sandbox_latency_ms", 120_000),
            transient_errors=number("sandbox_transient_errors", 1000),
            timeouts=number("sandbox_timeouts", 1000),
            async_settlement=metadata.get("sandbox_async_settlement") in (True, "true"),
            key_lifetime_seconds=(
                number("sandbox_key_lifetime_seconds", 10**9)
                if "sandbox_key_lifetime_seconds" in metadata
                else None
            ),
            status_unavailable=metadata.get("sandbox_status_unavailable") in (True, "true"),
        )

    def apply_to(self, operation: str) -> bool:
        return self.fault_on is None or self.fault_on == operation

    @property
    def counted(self) -> bool:
        return bool(self.transient_errors or self.timeouts)


class SandboxProcessor:
    capabilities = Capabilities(multicapture=True, incremental_authorization=True)

    def __init__(self, pool: AsyncConnectionPool, settings: Settings | None = None) -> None:
        self._pool = pool
        self._settings = settings or Settings()
        declined = {"soft_decline": SOFT_DECLINED, "hard_decline": HARD_DECLINED}
        self._reasons = {
            Outcome.DECLINED: declined.get(self._settings.authorize, DECLINED),
            Outcome.FAILED: FAILED,
        }

    def _reachable(self) -> None:
        if self._settings.unreachable:
            raise TransientError("sandbox: 503 Service Unavailable (account set unreachable)")

    def key_lifetime(self, call: Call) -> timedelta | None:
        seconds = Triggers.of(call.metadata).key_lifetime_seconds
        return None if seconds is None else timedelta(seconds=seconds)

    async def authorize(self, call: Call) -> Result:
        card = call.card
        outcome = Outcome.FAILED
        if self._settings.authorize != "by_card":
            outcome = Outcome.DECLINED
        elif card is not None:
            outcome = _BY_FIRST6_LAST4.get((card.first6, card.last4), Outcome.FAILED)
        result = await self._operate("authorize", call, outcome)
        if result.outcome is Outcome.PENDING:
            result = replace(result, required_action=THREE_DS)
        if self._settings.times_out:
            raise OutcomeUnknown("sandbox: timed out after doing the work (account set timesOut)")
        return result

    async def capture(self, call: Call) -> Result:
        settling = Triggers.of(call.metadata).async_settlement
        return await self._operate(
            "capture", call, Outcome.SETTLING if settling else Outcome.CAPTURED
        )

    async def cancel(self, call: Call) -> Result:
        return await self._operate("cancel", call, Outcome.CANCELLED)

    async def adjust(self, call: Call) -> Result:
        """An incremental authorization: done (once per key), on the authorization's id."""
        return await self._operate("adjust", call, Outcome.AUTHORIZED)

    async def refund(self, call: Call) -> Result:
        return await self._operate("refund", call, Outcome.REFUNDED)

    async def status(self, call: Call) -> Result:
        self._reachable()
        triggers = Triggers.of(call.metadata)
        number = await self._received(f"status:{call.verb}", call, triggers)
        if triggers.status_unavailable and triggers.apply_to(call.verb):
            raise OutcomeUnknown("sandbox: the status question timed out")
        async with self._pool.connection() as conn:
            cur = await conn.execute(_LAST_DONE, {"processor_key": call.processor_key})
            row = await cur.fetchone()
            if row is not None and not row[2]:
                await conn.execute(_SETTLE, {"processor_key": call.processor_key})
        await self._answer_late(triggers, call.verb, number)
        if row is None:
            return Result(Outcome.NOT_FOUND)
        outcome = Outcome(row[0])
        if outcome is Outcome.SETTLING:
            outcome = Outcome.CAPTURED  # asked after the fact: settled
        action = THREE_DS if outcome is Outcome.PENDING else None
        return Result(outcome, row[1], self._reasons.get(outcome), action)

    async def resume(self, call: Call, resume_token: str) -> Result:
        """The customer answered the 3-D Secure challenge: passed, unless the token says it
        failed (then declined)."""
        self._reachable()
        await self._received("resume", call, Triggers.of(call.metadata))
        passed = resume_token != FAILED_CHALLENGE
        async with self._pool.connection() as conn:
            await conn.execute(
                _CHALLENGED,
                {
                    "processor_key": call.processor_key,
                    "outcome": (Outcome.AUTHORIZED if passed else Outcome.DECLINED).value,
                },
            )
        return await self.status(replace(call, verb="authorize"))

    async def _operate(self, verb: str, call: Call, outcome: Outcome) -> Result:
        self._reachable()
        triggers = Triggers.of(call.metadata)
        counted = triggers.counted and triggers.apply_to(verb)
        # Calls counted for a trigger are recorded (and counted) first, on their own.
        number = await self._received(verb, call, triggers) if counted else 0
        params = {
            "id": uuid.uuid4(),
            "processor_key": call.processor_key,
            "reference": call.reference,
            "verb": verb,
            "amount": call.amount,
            "outcome": outcome.value,
            # Captures, cancels and adjustments act on the authorization; authorizations and
            # refunds are new.
            "processor_transaction_id": (
                call.processor_transaction_id
                if verb in ("capture", "cancel", "adjust") and call.processor_transaction_id
                else f"sbx_{secrets.token_hex(8)}"
            ),
            "settled": outcome is not Outcome.SETTLING,
        }
        async with self._pool.connection() as conn:
            if triggers.key_lifetime_seconds is not None:
                lifetime = triggers.key_lifetime_seconds
                await conn.execute(_FORGET, {**params, "lifetime": lifetime})
            if counted:
                await conn.execute(_DO_ONCE, params)  # at most once per processor key
            else:
                cur = await conn.execute(_RECORD_AND_DO, params)
                row = await cur.fetchone()
            if counted or row is None:
                # The statement's snapshot cannot see a row that a concurrent call with the same
                # key committed while this one waited on it: look again.
                cur = await conn.execute(_FIND, params)
                row = await cur.fetchone()
        assert row is not None
        await self._answer_late(triggers, verb, number)
        done = Outcome(row[0])
        if done is Outcome.SETTLING and row[2]:
            done = Outcome.CAPTURED
        return Result(done, row[1], self._reasons.get(done))

    async def _received(self, verb: str, call: Call, triggers: Triggers) -> int:
        """Record the call; return its number among the calls its triggers count (0: none)."""
        operation = verb.removeprefix("status:")
        params = {
            "reference": call.reference,
            "id": uuid.uuid4(),
            "processor_key": call.processor_key,
            "verb": verb,
            "amount": call.amount,
            "fault_on": triggers.fault_on,
            "verbs": [operation, f"status:{operation}"],
        }
        async with self._pool.connection() as conn:
            await conn.execute(_RECORD_CALL, params)
            if not triggers.counted or not triggers.apply_to(operation):
                return 0
            cur = await conn.execute(_COUNT_CALLS, params)
            row = await cur.fetchone()
        number = int(row[0]) if row else 0
        if number <= triggers.transient_errors:
            raise TransientError(f"sandbox: 503 Service Unavailable (call {number})")
        return number

    @staticmethod
    async def _answer_late(triggers: Triggers, operation: str, number: int) -> None:
        if triggers.latency_ms and triggers.apply_to(operation):
            await asyncio.sleep(triggers.latency_ms / 1000)
        if number and number <= triggers.timeouts:
            raise OutcomeUnknown(f"sandbox: timed out after doing the work (call {number})")


def build(resources: Resources, credentials: Any, settings: Settings | None) -> SandboxProcessor:
    return SandboxProcessor(resources.pool, settings)
