"""Payment instruments: what the gateway keeps of a card it tokenized (never the number or CVV)."""

from __future__ import annotations

import secrets
from datetime import datetime

from workflows.db import Database, Q
from workflows.model import Card


async def tokenize(db: Database, merchant_id: str, mode: str, card: Card) -> tuple[str, datetime]:
    """Keep `card` for the merchant in this mode; its new token and when it was made."""
    token = f"tok_{secrets.token_urlsafe(18)}"
    async with db.connection() as conn:
        cur = await conn.execute(
            Q["create_instrument"],
            {
                "merchant_id": merchant_id,
                "token": token,
                "mode": mode,
                "network": card.network,
                "first6": card.first6,
                "last4": card.last4,
                "expiration_month": card.expiration_month,
                "expiration_year": card.expiration_year,
                "cardholder_name": card.cardholder_name,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    return token, row[0]
