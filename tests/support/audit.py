"""A real Audit server in this process, clients for it, and events to send it."""

from __future__ import annotations

import queue
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import struct_pb2

from audit.server import build_server
from audit.settings import Settings
from audit.v1 import audit_pb2, audit_pb2_grpc
from common.auth import TokenVerifier
from tests.support.servers import RunningServer
from tests.support.tokens import TestSigner


def start_audit(settings: Settings, verifier: TokenVerifier) -> RunningServer:
    """An Audit server on its own loop; the caller stops it."""
    return RunningServer(lambda: build_server(settings, verifier))


class Client:
    """A stub with a writer's and a reader's token."""

    def __init__(self, channel: grpc.Channel, signer: TestSigner) -> None:
        self.stub = audit_pb2_grpc.AuditServiceStub(channel)
        self.writer = [("authorization", "Bearer " + signer.mint(permissions=("audit:write",)))]
        self.reader = [("authorization", "Bearer " + signer.mint(permissions=("audit:read",)))]


def make_event(
    *,
    id: str | None = None,
    source: str = "/tests",
    type: str = "oms.branch.created",
    subject: str = "branches/main",
    actor: str = "alice",
    data: dict[str, Any] | None = None,
    time: datetime | None = None,
    **attributes: str,
) -> audit_pb2.Event:
    """A valid event; each argument given replaces one field, ``attributes`` set CloudEvents'."""
    event = audit_pb2.Event(
        id=id or str(uuid.uuid4()),
        source=source,
        type=type,
        subject=subject,
        actor=actor,
        **attributes,
    )
    event.time.FromDatetime(time or datetime.now(UTC))
    payload = struct_pb2.Struct()
    payload.update(data if data is not None else {"branch": "main", "n": 1})
    event.data.CopyFrom(payload)
    return event


class Subscriber:
    """Collects a subscription's events on a thread; ``take`` waits with a bound."""

    def __init__(self, client, **request):
        self.call = client.stub.SubscribeEvents(
            audit_pb2.SubscribeEventsRequest(**request), metadata=client.reader, timeout=60
        )
        self.received: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        try:
            for event in self.call:
                self.received.put(event)
        except grpc.RpcError as exc:
            self.received.put(exc)

    def take(self, count, timeout=20):
        events = []
        for _ in range(count):
            item = self.received.get(timeout=timeout)
            if isinstance(item, grpc.RpcError):
                raise item
            events.append(item)
        return events

    def close(self):
        self.call.cancel()
        self.thread.join(10)
