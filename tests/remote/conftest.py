"""Remote tests drive the same in-process gateway as the integration tests."""

from tests.integration.conftest import gateway, probe  # noqa: F401  (fixtures)
