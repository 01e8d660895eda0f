"""Processor credentials, sealed at rest under the master key from GATEWAY_SECRET_KEY.

AES-256-GCM (`cryptography`), under a key derived from the master key with HKDF-SHA256. Each
ciphertext is bound to its row (merchant, account name, kind, settings) as associated data:
copied onto another row, or used with settings changed behind the gateway's back (another API
base), it does not open. Each row records the id of the master key that sealed it (a keyed
hash, never the key), so that `gateway secret-key rotate` re-seals the rows of older keys
(GATEWAY_SECRET_KEY_PREVIOUS) under the current one. Rows sealed before migration 0011 (Fernet,
unbound, no key id) are still read; a rotation re-seals them bound.

A credential is opened only in memory, when a processor client is built, and is never logged or
returned.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from workflows.errors import DomainError

# ciphertext = format + 12-byte nonce + AES-GCM output. gw2: bound to the row; gw3 (sealed now):
# bound to the row and its settings. Both open; a rotation re-seals gw2 as gw3.
_FORMAT = SEALED_FORMAT = b"gw3"
_ROW_ONLY = b"gw2"
_NONCE = 12


class CredentialError(DomainError):
    """A processor credential cannot be stored or read."""


class MissingMasterKey(CredentialError):
    """GATEWAY_SECRET_KEY is not set: processor secrets cannot be encrypted. Generate one with
    `gateway secret-key` and keep it safe (losing it makes stored secrets unreadable)."""


class UnreadableCredential(CredentialError):
    """A stored processor secret cannot be decrypted with GATEWAY_SECRET_KEY or any of
    GATEWAY_SECRET_KEY_PREVIOUS (another key?)."""


def new_master_key() -> str:
    return Fernet.generate_key().decode()


def valid_master_key(key: str) -> bool:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class Binding:
    """The associated data of an account's credentials: the row they belong to, and the settings
    they are used with (an API base changed behind the gateway's back does not get the key)."""

    merchant_id: str
    account: str
    kind: str
    settings: Any

    @property
    def row(self) -> bytes:
        return f"processor_accounts\x00{self.merchant_id}\x00{self.account}\x00{self.kind}".encode()

    @property
    def row_and_settings(self) -> bytes:
        shown = json.dumps(self.settings or {}, sort_keys=True, separators=(",", ":"))
        return self.row + f"\x00{shown}".encode()


def binding(merchant_id: str, account: str, kind: str, settings: Any) -> Binding:
    return Binding(merchant_id, account, kind, settings)


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    key_id: str | None  # which master key sealed it (None: nothing sealed)


class _MasterKey:
    def __init__(self, master_key: str) -> None:
        material = base64.urlsafe_b64decode(master_key.encode())
        self.fernet = Fernet(master_key.encode())  # rows sealed before 0011
        derived = HKDF(
            algorithm=SHA256(), length=32, salt=None, info=b"gateway processor credentials v2"
        ).derive(material)
        self.aead = AESGCM(derived)
        self.id = hmac.new(material, b"gateway master key id", hashlib.sha256).hexdigest()[:16]


class CredentialBox:
    def __init__(self, master_key: str | None, previous: Iterable[str] = ()) -> None:
        self._current = _MasterKey(master_key) if master_key else None
        keys = [self._current, *(_MasterKey(key) for key in previous)]
        self._keys = {key.id: key for key in keys if key is not None}

    def __repr__(self) -> str:
        return "CredentialBox(<master keys hidden>)"

    @property
    def key_id(self) -> str | None:
        """The id of the master key new secrets are sealed under."""
        return self._current.id if self._current else None

    def seal(self, secret: str, *, bound_to: Binding) -> Sealed:
        if self._current is None:
            raise MissingMasterKey(" ".join((MissingMasterKey.__doc__ or "").split()))
        nonce = os.urandom(_NONCE)
        ciphertext = self._current.aead.encrypt(nonce, secret.encode(), bound_to.row_and_settings)
        return Sealed(_FORMAT + nonce + ciphertext, self._current.id)

    def open(self, sealed: bytes, key_id: str | None, *, bound_to: Binding) -> str:
        if not self._keys:
            raise MissingMasterKey(
                "GATEWAY_SECRET_KEY is not set: stored processor secrets cannot be decrypted."
            )
        data = bytes(sealed)
        if key_id is None:
            return self._open_unbound(data)
        key = self._keys.get(key_id)
        if key is None:
            raise UnreadableCredential(
                f"this secret was sealed under master key {key_id}, which is neither "
                "GATEWAY_SECRET_KEY nor one of GATEWAY_SECRET_KEY_PREVIOUS"
            )
        if data.startswith(_FORMAT):
            associated = bound_to.row_and_settings
        elif data.startswith(_ROW_ONLY):
            associated = bound_to.row
        else:
            raise UnreadableCredential("this stored secret is not in a format the gateway seals")
        nonce, ciphertext = (
            data[len(_FORMAT) : len(_FORMAT) + _NONCE],
            data[len(_FORMAT) + _NONCE :],
        )
        try:
            return key.aead.decrypt(nonce, ciphertext, associated).decode()
        except InvalidTag:
            raise UnreadableCredential(
                "this stored secret does not open for its account: it was sealed for another "
                "account (a row copied or swapped), or the account's settings or the secret "
                "were altered behind the gateway's back"
            ) from None

    def _open_unbound(self, data: bytes) -> str:
        for key in self._keys.values():
            try:
                plain = key.fernet.decrypt(data).decode()
            except InvalidToken:
                continue
            # Bound to nothing: a copy from another row would open too. `rotate` binds it.
            structlog.get_logger("workflows.credentials").warning(
                "unbound_processor_secret", fix="gateway secret-key rotate"
            )
            return plain
        raise UnreadableCredential(" ".join((UnreadableCredential.__doc__ or "").split()))
