"""`python -m tools.bench [OPTIONS]` from the repository's root (what `make bench` runs).

The benchmark is a tool of the repository, not of the gateway package: a production install has
neither it nor psutil (the `bench` extra).
"""

from __future__ import annotations

import os
import sys

import click

from gateway.cli.common import resolved, settings
from tools.bench import run as bench


@click.command()
@click.option("--duration", type=float, default=8.0, show_default=True, help="seconds per scenario")
@click.option(
    "--concurrency",
    default="4,8,16,64",
    show_default=True,
    help="connections, comma-separated for a sweep",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    # One per core this process may run on, up to 4: each has its own pool of connections
    # (GATEWAY_DB_POOL_MAX, 20), and the embedded PostgreSQL takes 100 at most.
    default=lambda: min(4, len(os.sched_getaffinity(0)) or 1),
    show_default="the machine's cores, at most 4",
    help="gateway processes",
)
@click.option(
    "--latency-ms", type=int, default=300, show_default=True, help="sandbox processor latency"
)
@click.option(
    "--latency-concurrency",
    type=int,
    default=2000,
    show_default=True,
    help="connections of the latency run",
)
@click.option("--latency-duration", type=float, default=10.0, show_default=True)
@click.option(
    "--floor-clients",
    default="16",
    show_default=True,
    help="pgbench clients of the floor: a number, or 'peak' for the gateway's peak concurrency",
)
def main(
    duration: float,
    concurrency: str,
    processes: int,
    latency_ms: int,
    latency_concurrency: int,
    latency_duration: float,
    floor_clients: str,
) -> None:
    """Measure throughput and latency against the gateway's own limits (see the README)."""
    try:
        sweep = tuple(int(n) for n in concurrency.split(","))
    except ValueError:
        raise click.BadParameter(
            "numbers separated by commas, e.g. 16,64", param_hint="--concurrency"
        ) from None
    if floor_clients != "peak" and not (floor_clients.isdigit() and int(floor_clients) > 0):
        raise click.BadParameter("a positive number, or 'peak'", param_hint="--floor-clients")
    options = bench.Options(
        seconds=duration,
        concurrency=sweep,
        processes=processes,
        latency_ms=latency_ms,
        latency_concurrency=latency_concurrency,
        latency_seconds=latency_duration,
        floor_clients="peak" if floor_clients == "peak" else int(floor_clients),
    )
    given = settings()
    with resolved(given, need_redis=True) as ready:
        report = bench.run(ready, options, embedded=given.embedded)
    bench.print_report(report)
    sys.exit(1 if report["correctness"]["mismatches"] else 0)


if __name__ == "__main__":
    main(prog_name="make bench")
