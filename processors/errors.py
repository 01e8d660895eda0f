"""Everything a processor connector raises: one root, `ProcessorError`.

A decline is never an exception (it is a `Result`). Exceptions are for calls that did not get a
proper answer (`CallFailed`: `TransientError`, `OutcomeUnknown`) and for a processor account that
cannot be built (`Misconfigured`).
"""

from __future__ import annotations


class ProcessorError(Exception):
    """A processor could not be used."""


class Misconfigured(ProcessorError):
    """A processor account's kind, credentials or settings are not usable."""


class CallFailed(ProcessorError):
    """A processor could not be reached or did not answer properly."""

    def __init__(self, message: str = "", *, retryable: bool = True) -> None:
        super().__init__(message)
        # False when the processor itself says a retry now will not help (the outcome may still
        # be unknown: the run then waits for recovery instead of retrying at once).
        self.retryable = retryable


class TransientError(CallFailed):
    """Nothing happened at the processor (connection refused, 429, 5xx before processing)."""


class OutcomeUnknown(CallFailed):
    """The request may have been done: a timeout after sending, a reset, a 5xx."""
