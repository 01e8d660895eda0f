"""The in-process key cache: what it keeps, and what a revocation heard meanwhile prevents."""

from __future__ import annotations

from typing import Any

from gateway.accounts import StoredKey
from gateway.keycache import KeyCache


def stored(key_id: str = "k" * 16, revoked: bool = False) -> StoredKey:
    return StoredKey(key_id, "merchant", "mer_1", "sandbox", frozenset(), b"h" * 32, revoked)


def subscribed(seconds: float = 60) -> KeyCache:
    cache = KeyCache(redis=Any, seconds=seconds)  # type: ignore[arg-type]  # never reached here
    cache._forget(subscribed=True)  # as `follow` does once subscribed
    return cache


def test_a_key_read_before_a_revocation_was_heard_is_not_kept() -> None:
    cache = subscribed()
    before = cache.generation()
    cache.drop("another-key-id!!")  # a revocation heard while the key was being read
    cache.put(stored(), before)
    assert cache.get("k" * 16) is None
    cache.put(stored(), cache.generation())
    assert cache.get("k" * 16) == stored()


def test_nothing_is_kept_or_served_unless_revocations_are_followed() -> None:
    cache = subscribed()
    cache.put(stored(), cache.generation())
    cache._forget(subscribed=False)  # the subscription lost
    assert cache.get("k" * 16) is None
    cache.put(stored(), cache.generation())
    assert cache.get("k" * 16) is None


def test_revoked_keys_and_a_zero_lifetime_keep_nothing() -> None:
    cache = subscribed()
    cache.put(stored(revoked=True), cache.generation())
    assert cache.get("k" * 16) is None
    off = subscribed(seconds=0)
    off.put(stored(), off.generation())
    assert off.get("k" * 16) is None
