"""The Medusa surface's error shape for the edge's own errors."""

from __future__ import annotations

import json

from gateway.api.medusa.errors import shape
from gateway.http.errors import InternalError, RequestValidationError, validation_error


def test_an_unexpected_failure_is_medusas_unknown_error_without_internals() -> None:
    status, body = shape(InternalError("KeyError: 'secret' at line 3"), "rid")
    assert status == 500
    assert json.loads(body) == {
        "type": "unknown_error",
        "message": "An unknown error occurred.",
        "code": "unknown_error",
    }


def test_a_validation_error_is_invalid_data_naming_the_field() -> None:
    error = validation_error("Req", "Expected `int`, got `str` - at `$.amount`")
    assert isinstance(error, RequestValidationError)
    status, body = shape(error, "rid")
    assert status == 400
    assert json.loads(body) == {
        "type": "invalid_data",
        "message": "Expected `int`, got `str` (at $.amount)",
    }
