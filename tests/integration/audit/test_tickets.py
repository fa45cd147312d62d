"""Subscription tickets over a real server: how a browser opens a subscription without headers."""

from __future__ import annotations

import dataclasses
import time

import grpc
import pytest

from audit.v1 import audit_pb2
from tests.support.audit import Client, make_event, start_audit
from tests.support.errors import reason


def publish(client, count, **fields):
    return [
        client.stub.PublishEvent(
            audit_pb2.PublishEventRequest(event=make_event(**fields)),
            metadata=client.writer,
            timeout=10,
        )
        for _ in range(count)
    ]


def ticket(client, metadata=None):
    return client.stub.CreateSubscriptionTicket(
        audit_pb2.CreateSubscriptionTicketRequest(),
        metadata=client.reader if metadata is None else metadata,
        timeout=10,
    )


def first_events(client, count, metadata=(), **request):
    """The first ``count`` events of a subscription opened with ``metadata`` only."""
    call = client.stub.SubscribeEvents(
        audit_pb2.SubscribeEventsRequest(**request), metadata=metadata, timeout=10
    )
    try:
        return [next(call) for _ in range(count)]
    finally:
        call.cancel()


def refusal(client, metadata=(), **request):
    with pytest.raises(grpc.RpcError) as caught:
        first_events(client, 1, metadata, **request)
    return caught.value


def test_a_ticket_opens_subscriptions_without_a_bearer_token(client):
    stored = publish(client, 3)
    issued = ticket(client)
    assert issued.ticket
    assert 55 < issued.expire_time.seconds - time.time() <= 60
    for _ in range(2):  # a reconnect within its life gets in again
        got = first_events(client, 3, ticket=issued.ticket)
        assert [e.sequence for e in got] == [e.sequence for e in stored]


def test_a_ticket_needs_audit_read(client, signer):
    writer_only = [("authorization", "Bearer " + signer.mint(permissions=("audit:write",)))]
    with pytest.raises(grpc.RpcError) as caught:
        ticket(client, writer_only)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as caught:
        ticket(client, ())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_forged_tickets_and_tokens_as_tickets_are_refused(client, signer):
    issued = ticket(client).ticket
    payload, mac = issued.split(".")
    for forged in (f"{payload}.{mac[::-1]}", signer.mint(permissions=("audit:read",)), "x"):
        refused = refusal(client, ticket=forged)
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
        assert reason(refused) == "TICKET_INVALID"


def test_a_ticket_is_no_bearer_token(client):
    issued = ticket(client).ticket
    refused = refusal(client, [("authorization", f"Bearer {issued}")])
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(refused).startswith("TOKEN_")


def test_without_ticket_or_token_a_subscription_is_refused(client):
    refused = refusal(client)
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(refused) == "TOKEN_MISSING"


def test_an_expired_ticket_is_refused(settings, verifier, signer):
    server = start_audit(dataclasses.replace(settings, ticket_seconds=0.3), verifier)
    try:
        with grpc.insecure_channel(server.target) as channel:
            client = Client(channel, signer)
            issued = ticket(client).ticket
            time.sleep(0.4)
            refused = refusal(client, ticket=issued)
            assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
            assert reason(refused) == "TICKET_EXPIRED"
    finally:
        server.stop()


def test_tickets_of_one_log_open_it_after_a_restart(settings, verifier, signer):
    """The key is the log's, in its database, so any replica and any restart knows it."""
    server = start_audit(settings, verifier)
    try:
        with grpc.insecure_channel(server.target) as channel:
            issued = ticket(Client(channel, signer)).ticket
    finally:
        server.stop()
    again = start_audit(settings, verifier)
    try:
        with grpc.insecure_channel(again.target) as channel:
            client = Client(channel, signer)
            publish(client, 1)
            assert len(first_events(client, 1, ticket=issued)) == 1
    finally:
        again.stop()


def test_issuing_a_ticket_is_recorded_without_the_ticket(client, signer):
    issued = ticket(client)
    found = client.stub.QueryEvents(
        audit_pb2.QueryEventsRequest(type="audit.ticket.issued"), metadata=client.reader
    ).events
    assert len(found) == 1
    (event,) = found
    assert event.source == "/audit" and event.actor == "alice"
    assert event.data["method"] == "/audit.v1.AuditService/SubscribeEvents"
    assert issued.ticket not in str(event)
