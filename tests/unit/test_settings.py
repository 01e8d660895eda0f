"""Settings: GATEWAY_* variables parsed once into one typed object."""

from __future__ import annotations

import pytest

from gateway.settings import InvalidSetting, load


def test_defaults_describe_the_embedded_sandbox() -> None:
    settings = load({})
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 8080, ".gateway")
    assert settings.embedded
    assert settings.idempotency_ttl_seconds == 24 * 3600
    assert settings.max_body_bytes == 64 * 1024


def test_values_are_typed() -> None:
    settings = load(
        {
            "GATEWAY_PORT": "9090",
            "GATEWAY_DATABASE_URL": "postgresql://db/gw",
            "GATEWAY_REDIS_URL": "redis://cache:6379/0",
            "OTHER": "ignored",
        }
    )
    assert settings.port == 9090
    assert not settings.embedded


def test_empty_urls_mean_embedded() -> None:
    assert load({"GATEWAY_DATABASE_URL": "", "GATEWAY_REDIS_URL": ""}).embedded


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_PORT", "http"),
        ("GATEWAY_PORT", "-1"),
        ("GATEWAY_LOG_LEVEL", "verbose"),
        ("GATEWAY_DB_POOL_MAX", "0"),
        ("GATEWAY_REDIS_TIMEOUT_SECONDS", "soon"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(InvalidSetting) as raised:
        load({variable: value})
    assert raised.value.variable == variable
    assert variable in str(raised.value) and value in str(raised.value)
