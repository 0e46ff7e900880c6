"""The errors of `/api/columnline/` a caller can fix; the routes map each class to its status."""

from __future__ import annotations


class ColumnlineError(Exception):
    """An error in the request the caller can fix; `context` names what it is about."""

    def __init__(self, error: str, message: str, **context: object) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.context = {k: str(v) for k, v in context.items()}


class NotFoundError(ColumnlineError):
    """404: an unknown run, client, prompt or section definition."""


class ConflictError(ColumnlineError):
    """409: the request conflicts with the run's state (ended, published, stage done)."""


class UnprocessableError(ColumnlineError):
    """422: an Idempotency-Key sent again with another request."""


class TooLargeError(ColumnlineError):
    """413: what the request adds would take its run past what a dossier can hold."""


class BadRequestError(ColumnlineError):
    """400: a header the API cannot read (an Idempotency-Key that is not a key)."""
