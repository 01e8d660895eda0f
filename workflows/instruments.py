"""Payment instruments: what the gateway keeps of a card it tokenized (never the number or CVV)."""

from __future__ import annotations

import secrets
from datetime import datetime

from workflows import sessions
from workflows.db import Connection, Database, Q
from workflows.model import Card


async def tokenize(
    db: Database, merchant_id: str, mode: str, card: Card, client_token: str | None = None
) -> tuple[str, datetime]:
    """Keep `card` for the merchant in this mode (in the client session `client_token` names,
    if given: SessionNotFound if it names none); its new token and when it was made."""
    token = f"tok_{secrets.token_urlsafe(18)}"
    async with db.connection() as conn:
        session = None
        if client_token is not None:
            session = (await sessions.find(conn, merchant_id, client_token)).id
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
                "issuer_country": card.issuer_country,
                "client_session": session,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    return token, row[0]


async def card_behind(conn: Connection, merchant_id: str, token: str, mode: str) -> Card | None:
    """The card behind one of the gateway's tokens of the merchant in this mode; None if the token
    is not one (unknown, another mode, or a processor's own token)."""
    cur = await conn.execute(Q["find_instrument"], {"merchant_id": merchant_id, "token": token})
    instrument = await cur.fetchone()
    if instrument is None or instrument[6] != mode:
        return None
    network, first6, last4, month, year, holder, _, issuer_country = instrument
    return Card(
        network=network,
        first6=first6,
        last4=last4,
        expiration_month=month,
        expiration_year=year,
        cardholder_name=holder,
        issuer_country=issuer_country,
    )
