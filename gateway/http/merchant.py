"""A merchant's authenticated request, as every merchant-facing surface hands it to its handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from gateway import accounts
from gateway.http.bodies import read_body
from gateway.services import Services

T = TypeVar("T")


@dataclass
class MerchantRequest:
    request: Request
    principal: accounts.Principal
    services: Services
    idempotency_key: str | None

    @property
    def merchant_id(self) -> str:
        assert self.principal.merchant_id is not None
        return self.principal.merchant_id

    async def body(self, model: type[T]) -> T:
        return await read_body(self.request, model)
