"""Payment instruments: what the gateway keeps of a card it tokenized (never the number or CVV)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from workflows import sessions
from workflows.db import Connection, Database, Q
from workflows.errors import PaymentError, PaymentMethodTokenNotFound
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
            session = (await sessions.find(conn, merchant_id, mode, client_token)).id
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
    return card_of(await cur.fetchone(), mode)


def card_of(instrument: Any, mode: str) -> Card | None:
    """The card of find_instrument's columns (None: no row, or a row of another mode)."""
    if instrument is None or instrument[0] is None or instrument[6] != mode:
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


async def use(conn: Connection, merchant_id: str, token: str, payment_id: str) -> None:
    """A payment takes its token: a single-use one (not saved for a customer) only once;
    PaymentMethodTokenNotFound if another payment has taken it. A saved token, or a processor's
    own, is taken any number of times."""
    cur = await conn.execute(
        Q["use_instrument"], {"merchant_id": merchant_id, "token": token, "payment_id": payment_id}
    )
    row = await cur.fetchone()
    if row is not None and row[0] != payment_id:
        raise PaymentMethodTokenNotFound(
            "This paymentMethodToken is single-use and has paid for another payment: save it "
            "for the customer (POST /payment-instruments/{token}/vault) to use it again."
        )


# ---------------------------------------------------------------- vaulted payment methods


class InvalidPaymentInstrument(PaymentError):
    """No saved payment method of this merchant has this token (unknown, deleted, not saved)."""


@dataclass(frozen=True)
class Saved:
    """A vaulted payment method: multi-use, a customer's."""

    token: str
    card: Card
    customer_id: str
    default: bool
    created_at: datetime
    deleted_at: datetime | None


def _saved(row: dict[str, Any]) -> Saved:
    return Saved(
        token=row["token"],
        card=Card(
            network=row["network"],
            first6=row["first6"],
            last4=row["last4"],
            expiration_month=row["expiration_month"],
            expiration_year=row["expiration_year"],
            cardholder_name=row["cardholder_name"],
            issuer_country=row["issuer_country"],
        ),
        customer_id=row["customer_id"],
        default=row["is_default"],
        created_at=row["created_at"],
        deleted_at=row["deleted_at"],
    )


async def vault(
    conn: Connection, merchant_id: str, mode: str, token: str, customer_id: str
) -> Saved:
    """Save a card for a customer: a token of its own, multi-use; vaulting the same token (or
    the vaulted one) again gives that one back."""
    params = {"merchant_id": merchant_id, "mode": mode, "token": token}
    await conn.execute(
        Q["vault_instrument"],
        {**params, "customer_id": customer_id, "vaulted_token": f"tok_{secrets.token_urlsafe(18)}"},
    )
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(Q["vaulted_instrument"], params)
    row = await cur.fetchone()
    if row is None or row["deleted_at"] is not None:
        raise InvalidPaymentInstrument()
    if row["customer_id"] != customer_id:
        raise InvalidPaymentInstrument(
            "This payment method is saved for another customer: delete it there first."
        )
    return _saved(row)


async def saved_of(conn: Connection, merchant_id: str, mode: str, customer_id: str) -> list[Saved]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        Q["customer_instruments"],
        {"merchant_id": merchant_id, "mode": mode, "customer_id": customer_id},
    )
    return [_saved(row) for row in await cur.fetchall()]


async def delete(conn: Connection, merchant_id: str, mode: str, token: str) -> Saved:
    """A saved payment method deleted: kept for the payments made with it, taken by no new one."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        Q["delete_instrument"], {"merchant_id": merchant_id, "mode": mode, "token": token}
    )
    row = await cur.fetchone()
    if row is None:
        raise InvalidPaymentInstrument()
    return _saved(row)


async def make_default(conn: Connection, merchant_id: str, mode: str, token: str) -> Saved:
    """The customer's default saved payment method (and no other of theirs)."""
    params = {"merchant_id": merchant_id, "mode": mode, "token": token}
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(Q["vaulted_instrument"], params)
        found = await cur.fetchone()
        if found is None or found["token"] != token or found["deleted_at"] is not None:
            raise InvalidPaymentInstrument()
        await conn.execute(
            Q["lock_customer_instruments"], {**params, "customer_id": found["customer_id"]}
        )
        await conn.execute(
            Q["clear_default_instrument"], {**params, "customer_id": found["customer_id"]}
        )
        await cur.execute(Q["make_default_instrument"], params)
        row = await cur.fetchone()
    assert row is not None
    return _saved(row)
