"""How long a request waits for a database connection: long while it answers, short once not."""

from __future__ import annotations

from workflows.db import Breaker


def test_a_healthy_database_lets_a_burst_queue_as_long_as_the_pool_allows() -> None:
    assert Breaker(short_seconds=3).wait() is None


def test_after_a_failure_requests_wait_only_briefly_until_one_succeeds() -> None:
    breaker = Breaker(short_seconds=3)
    breaker.failed()
    assert breaker.wait() == 3
    breaker.succeeded()
    assert breaker.wait() is None


def test_the_short_wait_ends_by_itself_after_a_while() -> None:
    breaker = Breaker(short_seconds=3, open_seconds=0)
    breaker.failed()
    assert breaker.wait() is None  # nothing has failed since: back to the long wait
