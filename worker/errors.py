"""Every exception the worker raises on purpose, in one tree.

StreamlineError
├── ConfigError            a setting is missing or malformed (fails start-up, names the variable)
├── BrokerError            the embedded broker cannot start (binary missing, port taken, no answer)
├── ConnectError           the cluster cannot be reached or refuses us (TLS, SASL, address)
└── InvalidRecord          a message cannot become a record; carries a stable `reason` code
    └── RejectedByRule     a well-formed record that a business rule refuses
"""

from __future__ import annotations

from worker.reasons import Reason


class StreamlineError(Exception):
    """Base class of the worker's own errors."""


class ConfigError(StreamlineError):
    """A setting is missing or malformed. The message names the variable, never a secret."""


class BrokerError(StreamlineError):
    """The embedded broker cannot start. The message says what to do."""


class ConnectError(StreamlineError):
    """The worker cannot connect to the cluster at start-up. The message names the cause and the fix."""


class InvalidRecord(StreamlineError):
    """A message that cannot become a valid record. It goes to the dead-letter topic."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        #: A stable, machine-readable code (`invalid_json`, `missing_field`...): `worker.reasons`.
        self.reason = reason
        #: What exactly was wrong, for a person.
        self.detail = detail


class RejectedByRule(InvalidRecord):
    """A well-formed record that a business rule refuses (for example, fees above the amount)."""
