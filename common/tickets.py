"""Short-lived tickets: the right to open one kind of call, for clients that cannot send headers.

A browser's ``EventSource`` cannot set ``Authorization``, and a long-lived token in a URL ends
up in logs and in the browser's history. A ticket is what such a URL carries instead: issued to
an authenticated caller for one method (its purpose) and one permission, it lasts seconds (and
never longer than the token it was issued with), and opens that method only. It may be used
again within its life, so an EventSource reconnecting by itself gets back in; after that the
page asks for a new one. It dies with the session of the token it was issued with: a logout
or revocation ends it too.

A ticket is ``<payload>.<mac>``, both base64url: the payload is the canonical JSON of its
claims, the MAC an HMAC-SHA256 of it under a key the service's replicas share. Nothing here
knows about gRPC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common import times
from common.auth import Principal, RevocationCheck
from common.canonical import canonical_json
from common.errors import Unauthenticated

VERSION = 1
_DOMAIN = b"mesh-ticket-v1\x00"
"""Prefixed to what is MACed, so a ticket's MAC can mean nothing else under the same key."""


@dataclass(frozen=True)
class Ticket:
    """An issued ticket and when it stops working."""

    value: str
    expires_ns: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _refused(reason: str, message: str) -> Unauthenticated:
    return Unauthenticated(message, reason=reason)


class TicketBook:
    """Issues tickets and redeems them; every refusal is Unauthenticated with a reason."""

    def __init__(
        self,
        key: bytes,
        *,
        lifetime_ns: int,
        revocations: RevocationCheck,
        clock: Callable[[], int] = times.now,
    ) -> None:
        self._key = key
        self._lifetime_ns = lifetime_ns
        self._revocations = revocations
        self._clock = clock

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, _DOMAIN + payload, hashlib.sha256).digest()

    def issue(self, principal: Principal, *, purpose: str, permission: str) -> Ticket:
        """A ticket for ``purpose`` granting ``permission``, which the caller must hold."""
        principal.require(permission)
        expires_ns = min(self._clock() + self._lifetime_ns, principal.expires_ns)
        claims = {
            "v": VERSION,
            "purpose": purpose,
            "permission": permission,
            "sub": principal.user_id,
            "username": principal.username,
            "roles": list(principal.roles),
            "sid": principal.session_id,
            "jti": principal.token_id,
            "exp": expires_ns,
        }
        payload = canonical_json(claims).encode()
        return Ticket(f"{_b64(payload)}.{_b64(self._mac(payload))}", expires_ns)

    def redeem(self, value: str, *, purpose: str) -> Principal:
        """Who the ticket speaks for, holding its one permission.

        Refused unless it is ours, for ``purpose``, unexpired and of a session still valid.
        """
        claims = self._claims(value)
        if claims.get("purpose") != purpose:
            raise _refused("TICKET_PURPOSE_MISMATCH", "the ticket was issued for another call")
        if self._clock() >= claims["exp"]:
            raise _refused("TICKET_EXPIRED", "the ticket has expired; ask for a new one")
        if self._revocations.is_revoked(session_id=claims["sid"], token_id=claims["jti"]):
            raise _refused("TICKET_REVOKED", "the session the ticket was issued in has ended")
        return Principal(
            user_id=claims["sub"],
            username=claims["username"],
            roles=tuple(claims["roles"]),
            permissions=frozenset({claims["permission"]}),
            session_id=claims["sid"],
            token_id=claims["jti"],
            expires_ns=claims["exp"],
        )

    def _claims(self, value: str) -> dict[str, Any]:
        """The claims of a ticket this book issued; TICKET_INVALID for anything else."""
        invalid = _refused("TICKET_INVALID", "the ticket is not one this service issued")
        encoded_payload, dot, encoded_mac = value.partition(".")
        try:
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            raise invalid from None
        if not dot or not hmac.compare_digest(mac, self._mac(payload)):
            raise invalid
        claims: dict[str, Any] = json.loads(payload)
        if claims.get("v") != VERSION:
            raise invalid
        return claims
