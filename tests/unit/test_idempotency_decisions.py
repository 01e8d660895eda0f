"""What a request meets when its idempotency key is already held (no I/O)."""

from __future__ import annotations

import pytest

from gateway.api.primer.errors import from_payment_error
from gateway.http.errors import (
    IdempotencyKeyAlreadyExists,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from gateway.http.idempotency import IdempotencyScope, Record, fingerprint, refusal, validate_key
from workflows.errors import IdempotencyKeyReused as KeyReusedInEngine
from workflows.errors import RunAlreadyExists
from workflows.runner import RequestKey, repeat_of

SCOPE = IdempotencyScope("mer_1", "capture", "pay_1")
FP = fingerprint(SCOPE, b'{"amount":400}').hex()


def test_the_same_body_while_the_first_is_in_flight_is_told_to_retry_later() -> None:
    refused = refusal(Record("in_flight", FP), FP, retry_after=7)
    assert isinstance(refused, IdempotencyKeyInProgress)
    assert (refused.status, refused.headers) == (409, {"Retry-After": "7"})


def test_retry_after_is_never_zero() -> None:
    refused = refusal(Record("in_flight", FP), FP, retry_after=0)
    assert refused.headers == {"Retry-After": "1"}


def test_the_same_body_once_processed_names_the_payment_it_made() -> None:
    refused = refusal(Record("processed", FP, "pay_1", "SETTLED"), FP, retry_after=1)
    assert isinstance(refused, IdempotencyKeyAlreadyExists)
    assert (refused.status, refused.payment_id, refused.payment_status) == (409, "pay_1", "SETTLED")


@pytest.mark.parametrize("state", ["in_flight", "processed"])
def test_another_body_with_the_key_is_a_reused_key_whatever_the_first_became(state: str) -> None:
    other = fingerprint(SCOPE, b'{"amount":401}').hex()
    refused = refusal(Record(state, FP, "pay_1", "SETTLED"), other, retry_after=1)  # type: ignore[arg-type]
    assert isinstance(refused, IdempotencyKeyReused) and refused.status == 422


def test_a_fingerprint_is_of_the_operation_the_target_and_the_body() -> None:
    body = b'{"amount":400}'
    assert fingerprint(SCOPE, body) == fingerprint(
        IdempotencyScope("mer_2", "capture", "pay_1"), body
    )
    assert fingerprint(SCOPE, body) != fingerprint(
        IdempotencyScope("mer_1", "refund", "pay_1"), body
    )
    assert fingerprint(SCOPE, body) != fingerprint(
        IdempotencyScope("mer_1", "capture", "pay_2"), body
    )
    # Length-prefixed parts: moving bytes between parts changes the fingerprint.
    assert fingerprint(IdempotencyScope("m", "ab", "c"), b"") != fingerprint(
        IdempotencyScope("m", "a", "bc"), b""
    )


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\t", "é"])
def test_a_malformed_key_is_refused(key: str) -> None:
    with pytest.raises(InvalidIdempotencyKey):
        validate_key(key)


def test_a_well_formed_key_or_none_passes() -> None:
    assert validate_key(None) is None
    assert validate_key("!~" + "k" * 253) == "!~" + "k" * 253


# The engine's durable record (one run per key) decides the same way when Redis forgot the key.
KEY = RequestKey("k", b"\x01" * 32)


@pytest.mark.parametrize(
    ("state", "finished", "answer"),
    [
        ("succeeded", True, IdempotencyKeyAlreadyExists),
        ("failed", True, IdempotencyKeyAlreadyExists),
        ("running", False, IdempotencyKeyInProgress),
        ("stuck", False, IdempotencyKeyInProgress),  # an operator may still replay it
    ],
)
def test_a_run_for_the_key_answers_the_same_body_by_its_state(
    state: str, finished: bool, answer: type
) -> None:
    repeat = repeat_of(KEY, state, KEY.fingerprint, "pay_1", "AUTHORIZED")
    assert isinstance(repeat, RunAlreadyExists) and repeat.finished is finished
    assert isinstance(from_payment_error(repeat), answer)


def test_a_run_for_the_key_with_another_body_is_a_reused_key() -> None:
    repeat = repeat_of(KEY, "succeeded", b"\x02" * 32, "pay_1", "SETTLED")
    assert isinstance(repeat, KeyReusedInEngine)
    assert isinstance(from_payment_error(repeat), IdempotencyKeyReused)
