"""The operator console's sessions: a random id in a cookie, the session itself in Redis.

Why server-side and not a signed cookie: a signed cookie needs a signing key every gateway
process shares, and the gateway's only shared secret, GATEWAY_SECRET_KEY, is optional (the
sandbox of `make run` has none). Redis is shared by every process already, and a session kept
there can really end: signing out deletes it, so a copied cookie is worthless afterwards, which a
signed cookie cannot promise before it expires. The cost: while Redis cannot be reached, nobody
can sign in to the console (its pages answer 503); the payment APIs do not depend on it.

- The cookie holds 256 random bits and nothing else: never the API key, never the key's id.
  Redis holds the session under the SHA-256 of that id, so reading Redis gives no usable cookie.
- A session records the operator key's id, when it expires (`MAX_AGE_SECONDS` after sign-in,
  also the Redis key's TTL and the cookie's Max-Age), and a random CSRF secret of its own. Every
  request re-reads it and re-checks that the key is an operator key still active (signin.py):
  revoking the key ends its sessions at their next request.
- Every POST form carries the session's CSRF token, compared in constant time; a forged form
  (another site, or no token) is refused with 403 before anything is done.
- Cookie: `HttpOnly; SameSite=Strict; Path=/console; Max-Age=...`, and `Secure` over https.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "gw_console"
PATH = "/console"
MAX_AGE_SECONDS = 8 * 3600
_PREFIX = "gw:console:session:"

# The wall clock; a test moves it past a session's expiry.
clock: Callable[[], float] = time.time


class Stored(msgspec.Struct, frozen=True):
    key_id: str
    csrf: str
    expires_at: float


_decoder = msgspec.json.Decoder(Stored)


@dataclass(frozen=True)
class Session:
    """A signed-in operator: their key's id, the session's CSRF token, and its expiry."""

    id: str  # the cookie's value
    key_id: str
    csrf: str
    expires_at: float

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether a form's token is this session's (in constant time)."""
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


def _redis_key(session_id: str) -> str:
    return _PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


async def start(redis: Redis, key_id: str) -> Session:
    """A new session for the operator key `key_id` (a new id at every sign-in)."""
    session = Session(
        id=secrets.token_urlsafe(32),
        key_id=key_id,
        csrf=secrets.token_urlsafe(32),
        expires_at=clock() + MAX_AGE_SECONDS,
    )
    stored = Stored(session.key_id, session.csrf, session.expires_at)
    await redis.set(_redis_key(session.id), msgspec.json.encode(stored), ex=MAX_AGE_SECONDS)
    return session


async def find(redis: Redis, session_id: str | None) -> Session | None:
    """The session a cookie names, or None: unknown, altered, signed out or expired."""
    if not session_id or len(session_id) > 128:
        return None
    raw = await redis.get(_redis_key(session_id))
    if raw is None:
        return None
    try:
        stored = _decoder.decode(raw)
    except msgspec.DecodeError:
        return None
    if stored.expires_at <= clock():
        await end(redis, session_id)
        return None
    return Session(session_id, stored.key_id, stored.csrf, stored.expires_at)


async def end(redis: Redis, session_id: str) -> None:
    await redis.delete(_redis_key(session_id))


def set_cookie(response: Response, request: Request, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=MAX_AGE_SECONDS,  # set at sign-in only: the session's whole life
        path=PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE,
        path=PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
