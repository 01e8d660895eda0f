"""The `gateway` command: serve, migrate, the worker, and the operator's tools.

Every command reads the same settings. With no database/Redis URL it uses the embedded servers of
the data directory, starting them if no other process has, so `gateway keys create` works beside
a running `gateway serve`. One module per noun: serve.py, merchants.py, keys.py, processors.py,
runs.py (workflows and the worker), webhooks.py.

Exit codes: 0 done; 1 refused or failed (one line saying why); 2 a usage or configuration error.
"""

from __future__ import annotations

import os
import sys

import click

from gateway import GatewayError
from gateway.cli import keys, merchants, processors, routing, runs, serve, webhooks
from gateway.cli.common import ConfigError
from gateway.settings import InvalidSetting, unknown_variables
from workflows.errors import DomainError, StorageUnavailable


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """A payment orchestration gateway speaking Primer's Payments API v2.4."""
    for variable, closest in unknown_variables():
        hint = f" (did you mean {closest}?)" if closest else ""
        click.echo(f"gateway: warning: {variable} is not a gateway setting{hint}", err=True)


for command in (
    serve.serve,
    serve.migrate,
    serve.secret_key,
    merchants.group,
    keys.group,
    processors.group,
    routing.group,
    runs.group,
    runs.worker,
    webhooks.group,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe (`| head`) shows here, inside the handler below
        return code
    except BrokenPipeError:
        # The reader went away (`| head`): no traceback about it; exit 1 as click does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(argv: list[str] | None) -> int:
    try:
        result = cli.main(args=argv, prog_name="gateway", standalone_mode=False)
        return int(result or 0)
    except click.ClickException as error:  # a usage error: exit 2
        error.show()
        return error.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except InvalidSetting as error:
        click.echo(f"gateway: invalid setting {error}", err=True)
        return 2
    except ConfigError as error:
        click.echo(f"gateway: {error}", err=True)
        return 2
    except StorageUnavailable as error:
        click.echo(f"gateway: cannot reach PostgreSQL: {str(error).strip()}", err=True)
        return 1
    except (GatewayError, DomainError) as error:
        click.echo(f"gateway: {error}", err=True)
        return 1
