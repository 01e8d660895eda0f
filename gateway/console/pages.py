"""The console's reading pages: an overview, the payment search and a payment's timeline.

Each reads through the same domain functions the APIs use: the search is `Reads.list_payments`
(the query of Primer's `GET /payments`, with its filters), the timeline is the payment's view
(`Payments.view`), its runs (`Reads.list_runs` and `run_with_history`, as `GET /admin/workflows`)
and its webhook deliveries (`notifications.list_deliveries`, as the operator API lists them).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from gateway.console.errors import BadForm, NotFound
from gateway.console.render import page
from gateway.console.signin import Console, operator_page
from processors import registry
from workflows import merchants, notifications
from workflows.db import Connection
from workflows.errors import PaymentNotFound
from workflows.model import HistoryEntry, PaymentStatus, Run, RunState

PAGE_SIZE = 50
# What an id can look like (as the operator API checks): anything else names nothing.
ID = re.compile("^[A-Za-z0-9_-]{1,64}$")
_CURRENCY = re.compile("^[A-Z]{3}$")
_LAST4 = re.compile("^[0-9]{4}$")
_MAX_AMOUNT = 2**63 - 1


def query(request: Request) -> QueryParams:
    """The address's query, refused when a value holds what PostgreSQL text cannot (NUL)."""
    params = request.query_params
    if any("\x00" in value or len(value) > 1024 for _, value in params.multi_items()):
        raise BadForm("A search field holds a NUL character or is too long.")
    return params


def checked_id(value: str, what: str) -> str:
    if not ID.match(value):
        raise NotFound(f"There is no {what} {value[:64]!r}.")
    return value


async def merchant_list(conn: Connection) -> list[merchants.MerchantDetail]:
    return await merchants.list_merchants(conn)


# ------------------------------------------------------------------ overview


@operator_page
async def overview(request: Request, console: Console) -> Response:
    services = console.services
    stuck = await services.reads.list_runs(state=RunState.STUCK, limit=500)
    async with services.engine.db.connection() as conn:
        dead = await notifications.list_deliveries(conn, state="dead", limit=500)
    circuits = await services.engine.circuits.report()
    return page(
        request,
        "overview.html",
        console.session,
        stuck=len(stuck),
        dead=len(dead),
        circuits=[c for c in circuits if c.state != "closed"],
    )


# ------------------------------------------------------------------ payments search


@dataclass
class Search:
    """The payment search form: a merchant, and Primer's list filters (what `GET /payments`
    takes), as a form sends them (empty fields are no filter)."""

    merchant: str = ""
    statuses: list[str] = field(default_factory=list)
    currencies: list[str] = field(default_factory=list)
    order_id: str = ""
    customer_id: str = ""
    from_date: datetime | None = None
    to_date: datetime | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    processor: str = ""
    last4: str = ""
    after: tuple[datetime, str] | None = None
    problems: list[str] = field(default_factory=list)

    def filters(self) -> dict[str, Any]:
        """`Reads.list_payments`'s keyword filters, as Primer's list handler passes them."""
        processors = None
        if self.processor:  # by the name merchants see, as Primer's filter takes it
            processors = [
                kind.name for kind in registry.KINDS.values() if kind.display_name == self.processor
            ]
        return {
            "statuses": self.statuses or None,
            "currencies": self.currencies or None,
            "order_id": self.order_id or None,
            "customer_ids": [self.customer_id] if self.customer_id else None,
            "from_date": self.from_date,
            "to_date": self.to_date,
            "min_amount": self.min_amount,
            "max_amount": self.max_amount,
            "processors": processors,
            "last4s": [self.last4] if self.last4 else None,
        }


def _date(
    text: str, name: str, problems: list[str], *, end_of_day: bool = False
) -> datetime | None:
    """A date or date and time (a browser's date/datetime-local field); UTC unless it says. A
    date alone is its day's first moment, or with `end_of_day` its last (a "to" date takes in
    its own day)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{name}: not a date ({text[:40]!r})")
        return None
    if end_of_day and len(text) == len("2024-05-01"):
        value += timedelta(days=1, microseconds=-1)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _amount(text: str, name: str, problems: list[str]) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > _MAX_AMOUNT:
        problems.append(f"{name}: a whole number of minor units, 0 or more")
        return None
    return int(text)


def read_search(params: QueryParams) -> Search:
    problems: list[str] = []
    statuses = [s for s in params.getlist("status") if s]
    for status in statuses:
        if status not in PaymentStatus.__members__:
            problems.append(f"status: unknown status {status[:40]!r}")
    currencies = [c.strip().upper() for c in params.get("currency_code", "").split(",")]
    currencies = [c for c in currencies if c]
    for currency in currencies:
        if not _CURRENCY.match(currency):
            problems.append(f"currency_code: {currency[:40]!r} is not a 3-letter code")
    last4 = params.get("last_4_digits", "").strip()
    if last4 and not _LAST4.match(last4):
        problems.append("last_4_digits: four digits")
    processor = params.get("processor", "")
    if processor and processor not in {k.display_name for k in registry.KINDS.values()}:
        problems.append(f"processor: unknown processor {processor[:40]!r}")
    after = None
    if params.get("after"):
        at, _, payment_id = params["after"].partition("~")
        try:
            after = (datetime.fromisoformat(at), checked_id(payment_id, "payment"))
        except (ValueError, NotFound):
            problems.append("after: not a page of this search")
    return Search(
        merchant=params.get("merchant", ""),
        statuses=statuses,
        currencies=currencies,
        order_id=params.get("order_id", "").strip(),
        customer_id=params.get("customer_id", "").strip(),
        from_date=_date(params.get("from_date", ""), "from_date", problems),
        to_date=_date(params.get("to_date", ""), "to_date", problems, end_of_day=True),
        min_amount=_amount(params.get("min_amount", ""), "min_amount", problems),
        max_amount=_amount(params.get("max_amount", ""), "max_amount", problems),
        processor=processor,
        last4=last4,
        after=after,
        problems=problems,
    )


def _with(params: QueryParams, **changes: str | None) -> str:
    """This search's address with some parameters changed (None: removed)."""
    items = [(k, v) for k, v in params.multi_items() if k not in changes]
    items += [(k, v) for k, v in changes.items() if v is not None]
    return "?" + urllib.parse.urlencode(items)


@operator_page
async def payments(request: Request, console: Console) -> Response:
    services = console.services
    params = query(request)
    search = read_search(params)
    async with services.engine.db.connection() as conn:
        known = await merchant_list(conn)
    if not search.merchant and len(known) == 1:
        search.merchant = known[0].id
    merchant = next((m for m in known if m.id == search.merchant), None)
    if search.merchant and merchant is None:
        search.problems.append("merchant: no such merchant")
    found: list[Any] = []
    next_page = None
    if merchant is not None and not search.problems:
        found, has_more = await services.reads.list_payments(
            merchant.id, limit=PAGE_SIZE, after=search.after, **search.filters()
        )
        if has_more and found:
            last = found[-1]
            next_page = _with(params, after=f"{last.created_at.isoformat()}~{last.id}")
    return page(
        request,
        "payments.html",
        console.session,
        status=400 if search.problems else 200,
        search=search,
        merchants=known,
        merchant=merchant,
        statuses=list(PaymentStatus),
        processors=[k.display_name for k in registry.KINDS.values()],
        payments=found,
        display_name=registry.display_name,
        next_page=next_page,
        first_page=_with(params, after=None) if search.after else None,
    )


# ------------------------------------------------------------------ a payment's timeline


@dataclass(frozen=True)
class Moment:
    """One line of a payment's timeline, whatever it comes from."""

    at: datetime
    source: str  # transaction, event, run, webhook
    what: str
    detail: str = ""


def _moments(view: Any, runs: list[tuple[Run, list[HistoryEntry]]], deliveries: Any) -> list[Any]:
    moments = [  # a transaction's status is its current one, not the one it was created with
        Moment(
            t.created_at,
            "transaction",
            f"{t.type} created",
            f"{t.amount}, now {t.processor_status}, {t.id}",
        )
        for t in view.transactions
    ]
    moments += [
        Moment(e.created_at, "event", str(e.type), f"{e.amount if e.amount is not None else ''}")
        for e in view.events
    ]
    for run, history in runs:
        moments += [Moment(h.at, "run", f"{run.kind} {h.event}", run.id) for h in history]
    for d in deliveries:
        moments.append(Moment(d.created_at, "webhook", f"{d.type} queued", f"#{d.sequence}"))
        if d.finished_at:
            moments.append(
                Moment(d.finished_at, "webhook", f"{d.type} {d.state}", f"#{d.sequence}")
            )
    return sorted(moments, key=lambda m: m.at)


@operator_page
async def timeline(request: Request, console: Console) -> Response:
    services = console.services
    merchant_id = checked_id(request.path_params["merchant"], "merchant")
    payment_id = checked_id(request.path_params["payment"], "payment")
    try:
        view = await services.engine.payments.view(merchant_id, payment_id, events=True)
    except PaymentNotFound:
        raise NotFound(f"There is no payment {payment_id!r} of merchant {merchant_id!r}.") from None
    listed = await services.reads.list_runs(payment_id=payment_id, limit=200)
    runs = [
        await services.reads.run_with_history(run.id)
        for run in sorted(listed, key=lambda r: r.created_at)
        if run.merchant_id == merchant_id
    ]
    async with services.engine.db.connection() as conn:
        deliveries = await notifications.list_deliveries(
            conn, merchant_id=merchant_id, payment_id=payment_id, limit=200
        )
        names = {m.id: m.name for m in await merchant_list(conn)}
    return page(
        request,
        "payment.html",
        console.session,
        view=view,
        p=view.payment,
        merchant_name=names.get(merchant_id, merchant_id),
        runs=runs,
        deliveries=deliveries,
        moments=_moments(view, runs, deliveries),
    )
