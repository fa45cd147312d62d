"""Tickets: issued for one method and permission, refused when expired, forged or misused."""

from __future__ import annotations

import base64
import json

import pytest

from common import times
from common.auth import Principal, RevokedSet
from common.errors import PermissionDenied, Unauthenticated
from common.tickets import TicketBook

NOW = 1_700_000_000 * times.SECOND
PURPOSE = "/audit.v1.AuditService/SubscribeEvents"
READER = Principal(
    user_id="u-1",
    username="alice",
    roles=("auditor",),
    permissions=frozenset({"audit:read", "schema:write"}),
    session_id="s-1",
    token_id="t-1",
    expires_ns=NOW + times.seconds(900),
)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Revocations(RevokedSet):
    """The in-memory view as the verifier's revocation check presents it."""

    def is_revoked(self, *, session_id: str, token_id: str) -> bool:
        return self.covers(session_id=session_id, token_id=token_id)

    async def confirm(self, token: str) -> None:
        return None


@pytest.fixture
def revoked() -> Revocations:
    return Revocations()


@pytest.fixture
def book(clock: Clock, revoked: RevokedSet) -> TicketBook:
    return TicketBook(b"k" * 32, lifetime_ns=times.seconds(60), revocations=revoked, clock=clock)


def refusal(book: TicketBook, value: str, purpose: str = PURPOSE) -> str:
    with pytest.raises(Unauthenticated) as caught:
        book.redeem(value, purpose=purpose)
    return caught.value.reason


def test_a_ticket_opens_its_method_as_its_holder_with_its_one_permission(book, clock):
    ticket = book.issue(READER, purpose=PURPOSE, permission="audit:read")
    assert ticket.expires_ns == NOW + times.seconds(60)
    clock.now += times.seconds(59)
    for _ in range(2):  # usable again within its life: an EventSource reconnects with it
        principal = book.redeem(ticket.value, purpose=PURPOSE)
        assert (principal.user_id, principal.username, principal.roles) == (
            "u-1",
            "alice",
            ("auditor",),
        )
        assert principal.permissions == {"audit:read"}
        assert principal.has("audit:read") and not principal.has("schema:write")


def test_an_expired_ticket_is_refused(book, clock):
    ticket = book.issue(READER, purpose=PURPOSE, permission="audit:read")
    clock.now += times.seconds(60)
    assert refusal(book, ticket.value) == "TICKET_EXPIRED"


def test_a_ticket_never_outlives_the_token_it_was_issued_with(book):
    short = Principal(**{**READER.__dict__, "expires_ns": NOW + times.seconds(5)})
    assert book.issue(short, purpose=PURPOSE, permission="audit:read").expires_ns == (
        NOW + times.seconds(5)
    )


def test_a_ticket_for_another_method_is_refused(book):
    ticket = book.issue(READER, purpose="/audit.v1.AuditService/Other", permission="audit:read")
    assert refusal(book, ticket.value) == "TICKET_PURPOSE_MISMATCH"


def test_a_ticket_dies_with_its_session(book, revoked):
    ticket = book.issue(READER, purpose=PURPOSE, permission="audit:read")
    revoked.add(session_id="s-1", token_id=None, expires_ns=NOW + times.seconds(900), now_ns=NOW)
    assert refusal(book, ticket.value) == "TICKET_REVOKED"


def test_only_a_holder_of_the_permission_gets_a_ticket(book):
    with pytest.raises(PermissionDenied):
        book.issue(READER, purpose=PURPOSE, permission="audit:write")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_forged_and_foreign_tickets_are_refused(book, clock, revoked):
    ticket = book.issue(READER, purpose=PURPOSE, permission="audit:read").value
    payload, mac = ticket.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["permission"] = "*"
    forged = f"{_b64(json.dumps(claims).encode())}.{mac}"
    other_key = TicketBook(
        b"x" * 32, lifetime_ns=times.seconds(60), revocations=revoked, clock=clock
    ).issue(READER, purpose=PURPOSE, permission="audit:read")
    for value in (
        forged,
        other_key.value,
        f"{payload}.{mac[:-2]}",
        payload,
        "",
        "not.a.ticket",
        "ünïcode.ticket",
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln",  # a JWT is no ticket
    ):
        assert refusal(book, value) == "TICKET_INVALID", value
