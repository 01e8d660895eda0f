"""The manual processor: money that moves outside the gateway (cash, bank transfer, settled
elsewhere). Every operation succeeds at once; nothing is called."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from processors.base import Call, Capabilities, Outcome, Resources, Result

_OUTCOMES = {
    "authorize": Outcome.AUTHORIZED,
    "adjust": Outcome.AUTHORIZED,
    "capture": Outcome.CAPTURED,
    "cancel": Outcome.CANCELLED,
    "refund": Outcome.REFUNDED,
}


class ManualProcessor:
    capabilities = Capabilities(multicapture=True, incremental_authorization=True)

    def key_lifetime(self, call: Call) -> timedelta | None:
        return None  # nothing is called: nothing forgets

    async def authorize(self, call: Call) -> Result:
        return Result(Outcome.AUTHORIZED, f"manual_{call.processor_key}")

    async def capture(self, call: Call) -> Result:
        return Result(Outcome.CAPTURED, call.processor_transaction_id)

    async def cancel(self, call: Call) -> Result:
        return Result(Outcome.CANCELLED, call.processor_transaction_id)

    async def refund(self, call: Call) -> Result:
        return Result(Outcome.REFUNDED, f"manual_{call.processor_key}")

    async def adjust(self, call: Call) -> Result:
        return Result(Outcome.AUTHORIZED, call.processor_transaction_id)

    async def resume(self, call: Call, resume_token: str) -> Result:
        return await self.status(call)  # (never waits for a customer)

    async def status(self, call: Call) -> Result:
        # Whatever was asked of the manual processor, it did.
        return Result(_OUTCOMES[call.verb], call.processor_transaction_id)


def build(resources: Resources, credentials: Any, settings: Any) -> ManualProcessor:
    return ManualProcessor()
