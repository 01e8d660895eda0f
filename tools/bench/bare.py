"""Baseline (b), the HTTP limit: a bare Starlette route on the gateway's server settings.

It answers any POST with a fixed JSON body as large as the gateway's payment body, with no
database, no Redis, no work: what uvicorn and Starlette cost on their own.
`python -m tools.bench.bare PORT BODY_BYTES`
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def app(body_bytes: int) -> Starlette:
    body = b'{"pad":"' + b"x" * max(0, body_bytes - 10) + b'"}'

    async def answer(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    return Starlette(
        routes=[
            Route("/payments", answer, methods=["POST"]),
            Route("/payments/{id}/capture", answer, methods=["POST"]),
        ]
    )


if __name__ == "__main__":
    port, size = int(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(
        app(size),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        lifespan="off",
    )
