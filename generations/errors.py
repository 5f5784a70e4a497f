"""The error taxonomy: every failure recorded on a generation, variant or item carries
one of these codes, and the code alone decides whether the pipeline retries."""

from django.db import models


class ErrorCode(models.TextChoices):
    PROVIDER_ERROR = "provider_error", "The provider failed"
    PROVIDER_TIMEOUT = "provider_timeout", "The provider did not answer in time"
    PROVIDER_REJECTED = "provider_rejected", "The provider refused the request"
    STORAGE_UNAVAILABLE = "storage_unavailable", "Media storage was not reachable"
    INVALID_INPUT = "invalid_input", "The input cannot be processed"
    CANCELLED = "cancelled", "Cancelled"
    WORKER_LOST = "worker_lost", "The worker running it stopped"
    INTERNAL = "internal", "Internal error"


RETRYABLE_CODES = frozenset(
    {ErrorCode.PROVIDER_ERROR, ErrorCode.PROVIDER_TIMEOUT, ErrorCode.STORAGE_UNAVAILABLE}
)
# Failures that running the item again, as it is, cannot fix: a user's "retry failed"
# leaves them failed (editing and regenerating can).
RETRY_FUTILE_CODES = frozenset({ErrorCode.INVALID_INPUT})


class GenerationError(Exception):
    """A failure with a code from the taxonomy and a message fit to show a user."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES


class Cancelled(GenerationError):
    """Raised at a checkpoint once the generation has been cancelled."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.CANCELLED, "The generation was cancelled.")


class InputError(Exception):
    """Input that fails validation; `fields` maps each field name to its messages."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items()))
        self.fields = fields


class ActionRefused(Exception):
    """An action that the generation's current state does not allow (e.g. cancelling a
    completed generation); the message says why."""


class LimitExceeded(ActionRefused):
    """The user already has as many generations in flight as allowed."""
