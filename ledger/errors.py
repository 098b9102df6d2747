"""The ledger's error hierarchy: one root, specific subclasses.

Every message names the field and the offending value, so the CLI can print it as
is and a dead-letter record can carry it as the reason. Library errors are
translated at the boundary with ``raise ... from``.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose."""

    #: short machine-readable reason, used in dead-letter records and --json output
    code = "ledger-error"


class ValidationError(LedgerError):
    """Input that does not have the required shape: names field and value."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, value: object = None):
        super().__init__(message)
        self.field = field
        self.value = value


class UnknownProduct(ValidationError):
    code = "unknown-product"


class UnknownCountry(ValidationError):
    code = "unknown-country"


class UnknownRule(LedgerError):
    code = "unknown-rule"


class NotFound(LedgerError):
    """A correction, adjustment or revocation names something never recorded."""

    code = "not-found"


class ConflictingDuplicate(LedgerError):
    """The same identity was recorded before with a different payload."""

    code = "conflicting-duplicate"


class InvalidTransition(LedgerError):
    """The command is not allowed in the aggregate's current state (e.g. correct a void)."""

    code = "invalid-transition"


class RevivesAllocation(InvalidTransition):
    """An adjustment effective on or after the day its allocation ended (expired or
    revoked): an adjustment never revives an allocation. Names the field and value."""

    code = "revives-allocation"

    def __init__(self, message: str, *, field: str = "effective_date", value: object = None):
        super().__init__(message)
        self.field = field
        self.value = value


class Unauthorized(LedgerError):
    """An actor tried to write what only an administrator or another exporter may."""

    code = "unauthorized"


class StorageError(LedgerError):
    """The event store could not be reached or refused the write (retryable)."""

    code = "storage"


class ConfigurationError(LedgerError):
    code = "configuration"
