"""The gateway's process and edges: API surfaces, HTTP, settings, CLI, database set-up.

Every exception of the package derives from `GatewayError`; the domain's (`workflows.errors`)
and the connectors' (`processors.errors`) have their own roots.
"""


class GatewayError(Exception):
    """The gateway's edge refused or could not do something."""
