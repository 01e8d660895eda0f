"""The registry: every kind of processor, and what it reads back from an account."""

from __future__ import annotations

import pytest

from processors import registry, stripe
from processors.errors import Misconfigured


def test_the_built_in_kinds_need_no_account_and_stripe_does() -> None:
    assert registry.BUILTIN == ("sandbox", "manual")
    assert not registry.kind("stripe").builtin


def test_an_unknown_kind_is_refused_by_name() -> None:
    with pytest.raises(Misconfigured, match="unknown processor kind 'adyen'"):
        registry.kind("adyen")


def test_names_as_merchants_see_them() -> None:
    assert [registry.display_name(k) for k in registry.KINDS] == ["SANDBOX", "MANUAL", "STRIPE"]
    assert registry.display_name("gone") == "GONE"  # a kind removed since keeps its name


def test_credentials_are_read_as_the_kinds_json() -> None:
    opened = registry.kind("stripe").open_credentials('{"secretKey":"sk_test_new"}')
    assert opened == stripe.Credentials(secret_key="sk_test_new")


def test_an_account_sealed_before_migration_0006_holds_a_bare_secret_and_still_opens() -> None:
    opened = registry.kind("stripe").open_credentials("sk_test_legacy")
    assert opened == stripe.Credentials(secret_key="sk_test_legacy")


def test_unreadable_credentials_are_misconfigured_and_not_echoed() -> None:
    with pytest.raises(Misconfigured) as refused:
        registry.kind("stripe").open_credentials('{"secret": "sk_live_x"}')
    assert "sk_live_x" not in str(refused.value)


def test_settings_are_checked_by_the_kinds_type_and_typed_text_is_converted() -> None:
    kind = registry.kind("stripe")
    read = kind.read_settings({"apiBaseUrl": "http://stripe.test", "multicapture": "true"})
    assert read == stripe.Settings(api_base_url="http://stripe.test", multicapture=True)
    assert kind.read_settings(None) == stripe.Settings()
    with pytest.raises(Misconfigured, match="apiBaseUrl"):
        kind.read_settings({"apiBaseUrl": "ftp://nope"})
