"""Logs for a person on a terminal (structlog's console renderer), JSON lines for a collector;
scrubbed either way."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gateway.logging import REDACTED, configure, get_logger


@pytest.fixture(autouse=True)
def json_afterwards() -> Iterator[None]:
    yield
    configure("info")  # as every other test expects


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_lines_are_for_reading_and_still_scrubbed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    configure("info", "auto")
    get_logger("test").info("payment_created", payment_id="pay_1", number="4111111111111111")
    logging.getLogger("uvicorn.error").warning("library line with 4242424242424242")
    text = terminal.getvalue()
    lines = text.splitlines()
    assert len(lines) == 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])
    assert "payment_created" in lines[0] and "pay_1" in lines[0]
    assert "library line with" in lines[1]
    assert "4111111111111111" not in text and "4242424242424242" not in text
    assert text.count(REDACTED) == 2


def test_elsewhere_lines_are_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("info", "auto")  # pytest's captured stderr is no terminal
    get_logger("test").info("payment_created", payment_id="pay_1")
    line = json.loads(capsys.readouterr().err)
    assert line["event"] == "payment_created" and line["payment_id"] == "pay_1"


def test_the_format_can_be_forced_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    configure("info", "json")
    get_logger("test").info("on_a_terminal_but_json")
    assert json.loads(terminal.getvalue())["event"] == "on_a_terminal_but_json"
    piped = io.StringIO()
    monkeypatch.setattr("sys.stderr", piped)
    configure("info", "console")
    get_logger("test").info("piped_but_console")
    assert piped.getvalue().strip() and not piped.getvalue().lstrip().startswith("{")
