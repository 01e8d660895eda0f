"""Processor credentials, encrypted at rest with the master key from GATEWAY_SECRET_KEY.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`): authenticated, with the key's
rotation story (MultiFernet) ready when needed. A credential is decrypted only in memory, when a
processor client is built, and never logged or returned.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from workflows.errors import DomainError


class CredentialError(DomainError):
    """A processor credential cannot be stored or read."""


class MissingMasterKey(CredentialError):
    """GATEWAY_SECRET_KEY is not set: processor secrets cannot be encrypted. Generate one with
    `gateway secret-key` and keep it safe (losing it makes stored secrets unreadable)."""


class UnreadableCredential(CredentialError):
    """A stored processor secret cannot be decrypted with GATEWAY_SECRET_KEY (another key?)."""


def new_master_key() -> str:
    return Fernet.generate_key().decode()


def valid_master_key(key: str) -> bool:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return True


class CredentialBox:
    def __init__(self, master_key: str | None) -> None:
        self._fernet = Fernet(master_key.encode()) if master_key else None

    def __repr__(self) -> str:
        return "CredentialBox(<master key hidden>)"

    def seal(self, secret: str) -> bytes:
        if self._fernet is None:
            raise MissingMasterKey(" ".join((MissingMasterKey.__doc__ or "").split()))
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        if self._fernet is None:
            raise MissingMasterKey(
                "GATEWAY_SECRET_KEY is not set: stored processor secrets cannot be decrypted."
            )
        try:
            return self._fernet.decrypt(bytes(sealed)).decode()
        except InvalidToken:
            raise UnreadableCredential(UnreadableCredential.__doc__) from None
