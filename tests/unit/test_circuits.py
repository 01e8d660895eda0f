"""A processor account's circuit breaker, as kept in one process (the Redis store keeps the same
rules: tests/integration/test_circuits.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workflows.circuits import Circuit, CircuitConfig, CircuitState

CONFIG = CircuitConfig(failures=3, window_seconds=10, cool_off_seconds=30)


def test_failures_within_the_window_open_it_and_a_probe_closes_it() -> None:
    circuit = Circuit()
    for now in (0, 1, 2):
        assert circuit.allows(now, CONFIG)
        circuit.record(now, False, CONFIG)
    assert circuit.state(3) is CircuitState.OPEN and not circuit.allows(3, CONFIG)
    assert not circuit.allows(31, CONFIG)  # open until 2 + 30
    # Half-open: one probe is let through, the others are not.
    assert circuit.state(32) is CircuitState.HALF_OPEN
    assert circuit.allows(32, CONFIG)
    assert not circuit.allows(33, CONFIG)
    circuit.record(34, True, CONFIG)
    assert circuit.state(34) is CircuitState.CLOSED and circuit.allows(34, CONFIG)


def test_a_failed_probe_opens_it_again_for_a_whole_cool_off() -> None:
    circuit = Circuit()
    for now in (0, 0, 0):
        circuit.record(now, False, CONFIG)
    assert circuit.allows(30, CONFIG)  # the probe
    circuit.record(31, False, CONFIG)
    assert circuit.state(60) is CircuitState.OPEN
    assert circuit.state(61) is CircuitState.HALF_OPEN


def test_failures_spread_wider_than_the_window_do_not_open_it() -> None:
    circuit = Circuit()
    for now in (0, 6, 12, 18, 24):
        circuit.record(now, False, CONFIG)
    assert circuit.state(24) is CircuitState.CLOSED


def test_answers_keep_it_closed_whatever_they_are() -> None:
    circuit = Circuit()
    for now in range(100):
        circuit.record(now, True, CONFIG)
    assert circuit.state(100) is CircuitState.CLOSED and circuit.failures == []


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=60))
def test_it_opens_on_enough_failures_and_never_on_too_few(steps: list[tuple[int, bool]]) -> None:
    """Against a model, while closed: fewer than `failures` failures within the window never
    open it; enough of them, with no call answered for two windows (so every call counted is a
    failure), always do. It never lets a payment through while open."""
    circuit, now = Circuit(), 0.0
    failures: list[float] = []
    answered = -1e9  # when a call was last answered
    for gap, ok in steps:
        now += gap
        state = circuit.state(now)
        if state is CircuitState.OPEN:
            assert not circuit.allows(now, CONFIG)
        if state is not CircuitState.CLOSED:
            circuit.record(now, ok, CONFIG)
            failures = []
            continue
        if ok:
            answered = now
        else:
            failures = [t for t in failures if t > now - CONFIG.window_seconds] + [now]
        circuit.record(now, ok, CONFIG)
        opened = circuit.state(now) is CircuitState.OPEN
        if len(failures) < CONFIG.failures:
            assert not opened
        elif answered < now - 2 * CONFIG.window_seconds:
            assert opened
        if opened:
            failures = []


def test_a_busy_accounts_scattered_failures_do_not_open_it() -> None:
    circuit = Circuit()
    for call in range(100):  # 100 calls in 10 s, 5 of them failing: 5% of the calls
        circuit.record(call / 10, call % 20 != 0, CONFIG)
    assert circuit.state(10) is CircuitState.CLOSED
    for _ in range(100):  # then the account goes down: failures become the calls' majority
        circuit.record(10, False, CONFIG)
    assert circuit.state(10) is CircuitState.OPEN
