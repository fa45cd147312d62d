"""The ErrorInfo reasons the shared runtime can answer for an RPC, whatever the service.

Each service's ``REASONS`` (beside its ``POLICIES``) lists what its own RPCs add to these;
``gateway/reasons.py`` joins the two for the OpenAPI document and the tests' guard.
"""

from __future__ import annotations

EVERY_CALL = (
    "INVALID_ARGUMENT",
    "INTERNAL",
    "DATABASE_UNAVAILABLE",
    "STORAGE_FULL",
    "STORAGE_READ_ONLY",
    "STORAGE_IO_ERROR",
)
"""An undecodable request (``common/undecodable.py``), an unexpected fault, the database."""
TOKEN = (
    "TOKEN_MISSING",
    "TOKEN_MALFORMED",
    "TOKEN_ALGORITHM_NOT_ALLOWED",
    "TOKEN_TYPE_MISMATCH",
    "TOKEN_KEY_UNKNOWN",
    "TOKEN_EXPIRED",
    "TOKEN_NOT_YET_VALID",
    "TOKEN_AUDIENCE_INVALID",
    "TOKEN_ISSUER_INVALID",
    "TOKEN_SIGNATURE_INVALID",
    "TOKEN_CLAIM_MISSING",
    "TOKEN_INVALID",
    "TOKEN_REVOKED",
)
"""A call that needs a bearer token (``common/auth.py``)."""
REMOTE_TOKEN = ("REVOCATIONS_UNAVAILABLE", "USERS_UNAVAILABLE")
"""The same, in a service that learns keys and revocations from the User Service."""
PERMISSION = ("MISSING_PERMISSION",)
"""A call whose policy names a permission."""
TICKET = ("TICKET_INVALID", "TICKET_EXPIRED", "TICKET_PURPOSE_MISMATCH", "TICKET_REVOKED")
"""A call whose policy accepts a ticket (``common/tickets.py``)."""
STREAM = ("TOO_MANY_STREAMS", "STREAM_TOO_SLOW")
"""A streaming call (``common/interceptors.py``, ``common/streams.py``)."""
