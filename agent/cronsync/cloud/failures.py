"""What a failed CloudWatch Logs call means: whether it may be retried or may have been
done, and the one-line :class:`DeliveryError` it becomes at the edge.

Used by :mod:`cronsync.cloud.send`; botocore's exception classes are imported only
inside :func:`failure_kind`, which runs after a call failed (boto3 was loaded then).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from cronsync.core.errors import CronsyncError

_UNREACHABLE_CODES = frozenset(
    {
        "AccessDeniedException",
        "ExpiredTokenException",
        "InternalFailure",
        "ServiceUnavailableException",
        "ThrottlingException",
        "UnrecognizedClientException",
    }
)
_THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
    }
)
# Validation messages quote the offending value ("Value '...' at ..."): leave it out.
_QUOTED = re.compile(r"'[^']{40,}'")

# How a failed call ended: refused (final), retry (clearly not done: try again), doubt
# (the request may have reached the service: it may have been done).
Failure = Literal["refused", "retry", "doubt"]


class DeliveryError(CronsyncError):
    """CloudWatch Logs did not take a batch (after our retries).

    Args:
        message: one line, without secrets (the service's or the network's reason).
        unreachable: the service as a whole failed us (network, credentials,
            throttling, a server error), so other deliveries would fail too.
        in_doubt: the batch may be stored all the same (its outcome is unknown and the
            stream could not be read to find out): look before sending it again.
    """

    def __init__(self, message: str, *, unreachable: bool = False, in_doubt: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.in_doubt = in_doubt


def one_line(text: str, limit: int = 300) -> str:
    """Return ``text`` on one line, shortened to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_code(exc: BaseException) -> str:
    """Return the service's error code of a botocore ``ClientError`` ("" for others)."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    return str(error.get("Code", "")) if isinstance(error, dict) else ""


def http_status(exc: BaseException) -> int:
    """Return the HTTP status of a botocore ``ClientError`` (0 for others)."""
    response = getattr(exc, "response", None)
    meta = response.get("ResponseMetadata") if isinstance(response, dict) else None
    status = meta.get("HTTPStatusCode", 0) if isinstance(meta, dict) else 0
    return status if isinstance(status, int) else 0


def failure_kind(exc: BaseException) -> Failure:
    """Return how a call that raised ``exc`` ended.

    Returns:
        ``"retry"`` when the request surely did nothing and may be tried again (no
        connection was made, throttling); ``"doubt"`` when it may have reached the
        service (the connection closed or timed out after it went out, a server
        error); ``"refused"`` for the rest (the service said no, no credentials).
    """
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        HTTPClientError,
        ProxyConnectionError,
        SSLError,
    )

    code = error_code(exc)
    if code:
        if code in _THROTTLING_CODES:
            return "retry"
        return "doubt" if http_status(exc) >= 500 else "refused"
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)):
        return "retry"
    if isinstance(exc, (HTTPClientError, SSLError, OSError)):
        return "doubt"
    return "refused"


def translate(exc: BaseException, operation: str, *, in_doubt: bool = False) -> DeliveryError:
    """Return the :class:`DeliveryError` for a botocore or network exception."""
    code = error_code(exc)
    if not code:
        return DeliveryError(
            one_line(f"CloudWatch Logs {operation}: {type(exc).__name__}: {exc}"),
            unreachable=True,
            in_doubt=in_doubt,
        )
    response: dict[str, Any] = getattr(exc, "response", {})
    message = _QUOTED.sub("'…'", str(response.get("Error", {}).get("Message", "")))
    status = http_status(exc)
    unreachable = code in _UNREACHABLE_CODES or status >= 500
    text = one_line(f"CloudWatch Logs {operation}: {code}: {message}")
    return DeliveryError(text, unreachable=unreachable, in_doubt=in_doubt)
