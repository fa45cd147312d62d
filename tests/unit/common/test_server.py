"""The server factory over a real port: health, reflection, error mapping, deny-by-default."""

import threading
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from common import errors
from common.auth import NoRevocations, TokenVerifier
from common.config import RuntimeSettings
from common.interceptors import PUBLIC, current_principal, requires
from common.server import ServiceRegistration, create_server
from tests.support.tokens import AUDIENCE, ISSUER, TestSigner

SERVICE = "test.v1.ProbeService"


def _identity(data: bytes) -> bytes:
    return data


def _behaviours():
    def fail(request, context):
        raise errors.invalid(
            [
                errors.FieldViolation("name", "must not be empty"),
                errors.FieldViolation("kind", "unknown kind"),
            ]
        )

    def whoami(request, context):
        return current_principal().username.encode()

    def crash(request, context):
        raise RuntimeError("secret internals")

    def count(request, context):
        yield from (str(i).encode() for i in range(3))
        raise errors.Aborted("stream moved", reason="HEAD_MOVED")

    handlers = {
        "Fail": grpc.unary_unary_rpc_method_handler(fail, _identity, _identity),
        "WhoAmI": grpc.unary_unary_rpc_method_handler(whoami, _identity, _identity),
        "Crash": grpc.unary_unary_rpc_method_handler(crash, _identity, _identity),
        "Count": grpc.unary_stream_rpc_method_handler(count, _identity, _identity),
        "NoPolicy": grpc.unary_unary_rpc_method_handler(whoami, _identity, _identity),
    }
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


@pytest.fixture(scope="module")
def signer():
    return TestSigner()


@pytest.fixture(scope="module")
def channel(signer):
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, keys=signer, revocations=NoRevocations()
    )
    mesh = create_server(
        "127.0.0.1:0",
        domain="test.mesh",
        services=[
            ServiceRegistration(SERVICE, lambda s: s.add_generic_rpc_handlers((_behaviours(),)))
        ],
        policies={
            f"/{SERVICE}/Fail": PUBLIC,
            f"/{SERVICE}/Crash": PUBLIC,
            f"/{SERVICE}/Count": PUBLIC,
            f"/{SERVICE}/WhoAmI": requires("schema:read"),
        },
        verifier=verifier,
        settings=RuntimeSettings.from_env(),
    )
    mesh.start()
    with grpc.insecure_channel(f"127.0.0.1:{mesh.port}") as ch:
        yield ch
    mesh.stop(0)


def call(channel, method, token=None):
    stub = channel.unary_unary(f"/{SERVICE}/{method}", _identity, _identity)
    metadata = [("authorization", f"Bearer {token}")] if token else None
    return stub(b"", metadata=metadata, timeout=5)


def details_of(error):
    status = rpc_status.from_call(error)
    found = {}
    for detail in status.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if detail.Is(cls.DESCRIPTOR):
                msg = cls()
                detail.Unpack(msg)
                found[cls.__name__] = msg
    return found


def test_health_reports_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    assert (
        stub.Check(health_pb2.HealthCheckRequest(service=SERVICE)).status
        == health_pb2.HealthCheckResponse.SERVING
    )


def test_domain_error_becomes_status_with_every_violation(channel):
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, "Fail")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = details_of(caught.value)
    assert details["ErrorInfo"].reason == "INVALID_ARGUMENT"
    assert details["ErrorInfo"].domain == "test.mesh"
    assert [v.field for v in details["BadRequest"].field_violations] == ["name", "kind"]


def test_unexpected_exception_is_internal_without_leaking(channel):
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, "Crash")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in caught.value.details()


def test_stream_error_after_items(channel):
    stub = channel.unary_stream(f"/{SERVICE}/Count", _identity, _identity)
    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for item in stub(b"", timeout=5):
            received.append(item)
    assert received == [b"0", b"1", b"2"]
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert details_of(caught.value)["ErrorInfo"].reason == "HEAD_MOVED"


def test_auth_required_and_permission_checked(channel, signer):
    with pytest.raises(grpc.RpcError) as missing:
        call(channel, "WhoAmI")
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details_of(missing.value)["ErrorInfo"].reason == "TOKEN_MISSING"
    with pytest.raises(grpc.RpcError) as denied:
        call(channel, "WhoAmI", signer.mint(permissions=("audit:read",)))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (
        call(channel, "WhoAmI", signer.mint(username="bob", permissions=("schema:read",))) == b"bob"
    )


def test_method_without_policy_is_denied(channel, signer):
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, "NoPolicy", signer.mint())
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details_of(caught.value)["ErrorInfo"].reason == "NO_POLICY"


def test_each_rpc_is_logged_with_method_code_and_caller(channel, signer, caplog):
    caplog.set_level("INFO", logger="mesh.rpc")
    call(channel, "WhoAmI", signer.mint(username="carol", permissions=("schema:read",)))
    with pytest.raises(grpc.RpcError):
        call(channel, "Fail")
    records = [r for r in caplog.records if r.name == "mesh.rpc"]
    assert [(r.method, r.code, r.user) for r in records] == [
        (f"/{SERVICE}/WhoAmI", "OK", "carol"),
        (f"/{SERVICE}/Fail", "INVALID_ARGUMENT", None),
    ]


def test_health_waits_for_readiness_before_serving():
    ready = threading.Event()
    mesh = create_server(
        "127.0.0.1:0",
        domain="test.mesh",
        services=[],
        policies={},
        verifier=None,
        settings=RuntimeSettings.from_env(),
    )
    mesh.readiness = ready.wait
    mesh.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{mesh.port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            check = health_pb2.HealthCheckRequest()
            assert stub.Check(check, timeout=5).status == health_pb2.HealthCheckResponse.NOT_SERVING
            ready.set()
            deadline = time.monotonic() + 10
            while stub.Check(check, timeout=5).status != health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() < deadline, "never became SERVING"
                time.sleep(0.05)
    finally:
        mesh.stop(0)


def test_drain_callbacks_end_long_lived_streams_so_they_finish_cleanly():
    """A subscription-like stream released by ``on_drain`` ends OK within the grace period,
    instead of being cancelled when the grace runs out."""
    released = threading.Event()

    def follow(request, context):
        yield b"first"
        released.wait(60)
        yield b"drained"

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Follow": grpc.unary_stream_rpc_method_handler(follow, _identity, _identity)}
    )
    mesh = create_server(
        "127.0.0.1:0",
        domain="test.mesh",
        services=[ServiceRegistration(SERVICE, lambda s: s.add_generic_rpc_handlers((handler,)))],
        policies={f"/{SERVICE}/Follow": PUBLIC},
        verifier=None,
        settings=RuntimeSettings.from_env(),
    )
    mesh.on_drain.append(released.set)
    mesh.start()
    with grpc.insecure_channel(f"127.0.0.1:{mesh.port}") as ch:
        stream = ch.unary_stream(f"/{SERVICE}/Follow", _identity, _identity)(b"", timeout=120)
        assert next(stream) == b"first"
        stopper = threading.Thread(target=mesh.stop, args=(60,))
        stopper.start()
        assert list(stream) == [b"drained"]
        assert stream.code() == grpc.StatusCode.OK
        stopper.join(60)
        assert not stopper.is_alive()
