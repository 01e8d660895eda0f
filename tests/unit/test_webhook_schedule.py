"""The webhook retry schedule, and Stripe's signature check, as pure functions."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.stripe.events import BadSignature, sign, verify
from workflows.notifications import Schedule

SCHEDULE = Schedule(base_seconds=30, max_seconds=3600, give_up_seconds=86400)


@given(st.integers(1, 10_000), st.floats(0, 0.999))
def test_each_delay_doubles_within_its_jitter_up_to_the_cap(attempts: int, draw: float) -> None:
    delay = SCHEDULE.next_delay(attempts, timedelta(0), draw)
    assert delay is not None
    nominal = min(30 * 2 ** min(attempts - 1, 40), 3600)
    assert nominal * 0.5 <= delay < nominal * 1.5


def test_a_day_of_retries_then_it_is_given_up() -> None:
    since_first, attempts = timedelta(0), 0
    while (delay := SCHEDULE.next_delay(attempts + 1, since_first, 0.5)) is not None:
        attempts += 1
        since_first += timedelta(seconds=delay)
    assert timedelta(hours=24) <= since_first <= timedelta(hours=25)  # at least a day
    assert 25 <= attempts <= 40  # retried all day long, not a handful of times


@given(st.lists(st.floats(0, 0.999), min_size=60, max_size=60))
def test_whatever_the_jitter_it_is_never_given_up_within_a_day(draws: list[float]) -> None:
    since_first = timedelta(0)
    for attempts, draw in enumerate(draws, start=1):
        delay = SCHEDULE.next_delay(attempts, since_first, draw)
        if delay is None:
            break
        since_first += timedelta(seconds=delay)
    assert since_first >= timedelta(hours=24)


EVENT = json.dumps({"id": "evt_1", "type": "refund.updated", "data": {"object": {
    "id": "re_1", "object": "refund", "payment_intent": "pi_1",
    "metadata": {"processor_key": "mer_1:refund:k"}}}}).encode()  # fmt: skip


def test_a_stripe_signature_is_checked_against_every_v1_and_the_clock() -> None:
    good = sign("whsec_new", EVENT, 1_000_000)
    other = sign("whsec_old", EVENT, 1_000_000).split(",")[1]
    # During a roll Stripe signs with both secrets: either one's v1 is enough.
    notice = verify("whsec_new", f"{good},{other}", EVENT, 1_000_100)
    assert (notice.event_id, notice.object_id, notice.processor_key) == (
        "evt_1",
        "re_1",
        "mer_1:refund:k",
    )
    with pytest.raises(BadSignature):
        verify("whsec_new", good, EVENT + b" ", 1_000_100)  # a body changed in transit
    with pytest.raises(BadSignature):
        verify("whsec_new", good, EVENT, 1_000_301)  # too old: a replay
    with pytest.raises(BadSignature):
        verify("whsec_new", good.replace("t=1000000", "t=1000200"), EVENT, 1_000_200)
    with pytest.raises(BadSignature):  # digits that are not ASCII: no timestamp, not a crash
        verify("whsec_new", good.replace("t=1000000", "t=\u00b2"), EVENT, 1_000_100)
