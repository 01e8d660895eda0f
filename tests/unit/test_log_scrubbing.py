"""No card number, CVV, API key, processor secret or Authorization header reaches a log line."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.logging import REDACTED, configure, get_logger, luhn_valid, scrub
from processors.base import Card

CARDS = [
    "4111111111111111",
    "4242424242424242",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
]


def log_line(capsys: pytest.CaptureFixture[str], **event: object) -> str:
    configure("info")
    get_logger("test").info("event", **event)
    return capsys.readouterr().err


@pytest.mark.parametrize("card", CARDS)
def test_card_numbers_are_removed_wherever_they_appear(
    capsys: pytest.CaptureFixture[str], card: str
) -> None:
    line = log_line(
        capsys,
        message=f"charging {card} now",
        nested={"deep": [f"pan={card}"], "as_int": int(card)},
        spaced=" ".join(card[i : i + 4] for i in range(0, len(card), 4)),
        dashed="-".join(card[i : i + 4] for i in range(0, len(card), 4)),
    )
    digits_only = "".join(ch for ch in line if ch.isdigit() or ch == "\n")
    assert card not in digits_only.replace("\n", " ")
    assert card not in line
    assert REDACTED in line
    json.loads(line)  # still one valid JSON line


def test_digit_runs_that_are_not_card_numbers_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    line = log_line(capsys, order_id="4111111111111112", amount=1999, phone="+44 20 7946 0958")
    assert "4111111111111112" in line  # fails the Luhn check: not a card number
    assert "1999" in line and "7946 0958" in line


@pytest.mark.parametrize(
    "field",
    ["cvv", "CVV", "cvc", "card_number", "number", "authorization", "x-api-key", "secret_key"],
)
def test_secret_fields_are_redacted_whatever_their_value(
    capsys: pytest.CaptureFixture[str], field: str
) -> None:
    line = log_line(capsys, request={"card": {field: "123"}})
    assert json.loads(line)["request"]["card"][field] == REDACTED


def test_api_keys_processor_secrets_and_authorization_headers_are_removed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway_key = "gw_sandbox_abcdefghijklmnop_s3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3t12345678"
    line = log_line(
        capsys,
        note=f"used {gateway_key} and sk_test_51HxYzAbCdEfGh and rk_live_ZZZZ1234abcd",
        header="Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    )
    for secret in (
        "s3cr3tS3cr3t",
        "sk_test_51HxYzAbCdEfGh",
        "rk_live_ZZZZ1234abcd",
        "eyJhbGciOiJIUzI1NiJ9",
    ):
        assert secret not in line


def test_standard_library_log_records_are_scrubbed_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure("info")
    logging.getLogger("some.library").warning("failed for card %s", "4242424242424242")
    line = capsys.readouterr().err
    assert "4242424242424242" not in line and REDACTED in line


def test_exceptions_in_logs_are_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    configure("info")
    try:
        raise ValueError("card 5555555555554444 refused")
    except ValueError:
        get_logger("test").exception("boom")
    line = capsys.readouterr().err
    assert "5555555555554444" not in line and "ValueError" in line


@given(st.lists(st.integers(0, 9), min_size=12, max_size=18))
def test_any_luhn_valid_run_of_13_to_19_digits_is_removed(body: list[int]) -> None:
    # Complete the run with the one check digit that makes it Luhn-valid.
    digits = "".join(map(str, body))
    check = next(str(d) for d in range(10) if luhn_valid(digits + str(d)))
    card = digits + check
    assert scrub(f"x{card}y") == f"x{REDACTED}y"


def test_luhn() -> None:
    assert all(luhn_valid(card) for card in CARDS)
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize("card", CARDS)
def test_card_numbers_next_to_other_digits_or_written_with_dots_are_removed(
    capsys: pytest.CaptureFixture[str], card: str
) -> None:
    line = log_line(
        capsys,
        followed=f"{card} 123",
        dotted=".".join(card[i : i + 4] for i in range(0, len(card), 4)),
        query=f"pan={card}&cvv=123&exp=1230",
    )
    assert card not in "".join(ch for ch in line if ch.isdigit() or ch == " ")
    assert "=123&" not in line  # the CVV in free text too
    json.loads(line)


def test_a_cvv_written_into_text_is_removed_and_other_numbers_kept() -> None:
    assert scrub('cvv=123, "cvc": "4567", security code: 999') == (
        f'cvv={REDACTED}, "cvc": "{REDACTED}", security code: {REDACTED}'
    )
    assert scrub("amount=1234 order 42") == "amount=1234 order 42"


def test_values_of_any_type_holding_a_card_are_scrubbed_by_structure_or_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @dataclasses.dataclass
    class Held:
        number: str
        note: str

    class Opaque:
        def __str__(self) -> str:
            return "Opaque(4111111111111111)"

    line = log_line(
        capsys,
        struct=Card(
            network="VISA",
            first6="411111",
            last4="1111",
            expiration_month="12",
            expiration_year="2030",
            cardholder_name="pan 4242424242424242",
        ),
        dataclass=Held("4111111111111111", "x"),
        opaque=Opaque(),
        kept=[1.5, None, True],
    )
    for card in ("4111111111111111", "4242424242424242"):
        assert card not in line
    assert json.loads(line)["kept"] == [1.5, None, True]


@given(st.sampled_from(CARDS), st.text(alphabet="0123456789 ", max_size=12))
def test_a_card_number_followed_by_anything_is_never_logged(card: str, tail: str) -> None:
    assert card not in scrub(f"{card} {tail}")


@given(
    st.lists(
        st.one_of(
            st.text(alphabet="0123456789 .-x", max_size=40),
            st.sampled_from(CARDS),
            st.sampled_from(["4111 1111 1111 1111", "4111-1111-1111-1111", "5555.5555.5555.4444"]),
        ),
        max_size=6,
    )
)
def test_the_quick_look_for_cards_misses_none_the_careful_one_finds(parts: list[str]) -> None:
    from processors.cards import _spans, card_number_spans

    text = "".join(parts)
    assert card_number_spans(text) == _spans(text)
