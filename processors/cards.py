"""What can be told of a card number without asking anyone: its check digit and its network."""

from __future__ import annotations

import re


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def network_of(number: str) -> str:
    if number.startswith("4"):
        return "VISA"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "MASTERCARD"
    if number[:2] in {"34", "37"}:
        return "AMEX"
    return "OTHER"


# Digits grouped by single spaces, dashes or dots: how a card number is written by hand.
_DIGIT_GROUPS = re.compile(r"(?<![\d])\d+(?:[ .-]\d+)*(?![\d])")
# Thirteen digits, each from the next by at most one of those: without them, no group of
# digits is long enough to be a card number (a quick look before the careful one: every log
# value and every free-form field is read for cards).
_THIRTEEN_DIGITS = re.compile(r"\d(?:[ .-]?\d){12}")


def card_number_spans(text: str) -> list[tuple[int, int]]:
    """Where `text` holds what may be a card number: a Luhn-valid run of 13 to 19 digits, made
    of whole groups of a digit sequence (so "4111111111111111 123" is found by its first group,
    and a longer id is not cut anywhere to look like one)."""
    if not _THIRTEEN_DIGITS.search(text):
        return []
    return _spans(text)


def _spans(text: str) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for match in _DIGIT_GROUPS.finditer(text):
        groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", match.group(0))]
        for first in range(len(groups)):
            digits = ""
            for last in range(first, len(groups)):
                start, end = groups[last]
                digits += match.group(0)[start:end]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    found.append((match.start() + groups[first][0], match.start() + end))
    return found


def holds_card_number(text: str) -> bool:
    return any(c.isdigit() for c in text) and bool(card_number_spans(text))
