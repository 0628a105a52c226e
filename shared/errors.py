"""Errors a service raises for its callers, and that cross RPC as themselves.

Nameko rebuilds an exception registered with ``deserialize_to_instance`` from
its args on the calling side, so the gateway catches these classes, not a
generic ``RemoteError``, and maps each to its HTTP status in one table
(``status`` below). Anything else from a service is an internal error.
"""

from __future__ import annotations

from typing import Any

from nameko.exceptions import deserialize_to_instance


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details or {})
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


@deserialize_to_instance
class InvalidInput(ServiceError):
    """Well-formed but unacceptable input; ``details["fields"]`` maps field to messages."""

    status = 422
    code = "invalid_input"


@deserialize_to_instance
class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


@deserialize_to_instance
class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


@deserialize_to_instance
class NotFound(ServiceError):
    status = 404
    code = "not_found"


@deserialize_to_instance
class Conflict(ServiceError):
    """The state changed, or the thing exists already; ``details`` says which."""

    status = 409
    code = "conflict"


@deserialize_to_instance
class StaleState(Conflict):
    """What a command decided on changed before it was recorded (another
    writer appended to the stream first). Retrying the request is safe."""

    code = "stale_state"


@deserialize_to_instance
class TooManyRequests(ServiceError):
    """``details["retry_after"]`` is the number of seconds to wait."""

    status = 429
    code = "too_many_requests"


@deserialize_to_instance
class Unavailable(ServiceError):
    status = 503
    code = "unavailable"


@deserialize_to_instance
class PaymentFailed(ServiceError):
    """The payment provider refused; ``details["reason"]`` says why (for example
    ``card_declined`` or ``insufficient_funds``)."""

    status = 402
    code = "payment_failed"


class TokenRejected(ServiceError):
    """A token from a mailed link (verification, password reset) that is not
    taken; the subclass's ``code`` says why."""

    status = 400
    code = "token_rejected"


@deserialize_to_instance
class TokenInvalid(TokenRejected):
    """No such token: forged, mistyped, or for another account."""

    code = "token_invalid"


@deserialize_to_instance
class TokenExpired(TokenRejected):
    code = "token_expired"


@deserialize_to_instance
class TokenUsed(TokenRejected):
    """Single-use: it was used already (or a later one of its kind was)."""

    code = "token_used"


class EmailUnverified(Forbidden):
    """Raised by the gateway: the account's address is not verified yet."""

    code = "email_unverified"


class SessionEnded(Unauthorized):
    """Raised by the gateway: the access token's session was ended (logout,
    log out everywhere, a password change or reset)."""

    code = "session_ended"
