"""The server factory over a real port.

Health, reflection, error mapping, deny-by-default, undecodable requests, stream limits,
readiness and drain.
"""

import asyncio
import dataclasses
import json
import logging
import threading
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common import errors
from common.blocking import Blocking
from common.config import RuntimeSettings
from common.interceptors import PUBLIC, Policy, current_principal, requires
from common.server import MeshServer, ServiceRegistration, add_generic_handler, create_server
from common.status import no_details
from tests.support.errors import details, error_info, reason, violated_fields
from tests.support.servers import RunningServer, running
from tests.support.waiting import eventually
from users.v1 import auth_service_pb2 as auth_pb

SERVICE = "test.v1.ProbeService"


def _identity(data: bytes) -> bytes:
    return data


async def _fail(request, context):
    raise errors.invalid(
        [
            errors.FieldViolation("name", "must not be empty"),
            errors.FieldViolation("kind", "unknown kind"),
        ]
    )


async def _whoami(request, context):
    return current_principal().username.encode()


async def _crash(request, context):
    raise RuntimeError("secret internals")


async def _count(request, context):
    for i in range(3):
        yield str(i).encode()
    raise errors.Aborted("stream moved", reason="HEAD_MOVED")


async def _hold(request, context):
    yield b"held"
    await asyncio.Event().wait()


async def _login_name(request, context):
    return auth_pb.LoginResponse(token_type=request.username)


async def _count_logins(requests, context):
    seen = 0
    async for _ in requests:
        seen += 1
    return auth_pb.LoginResponse(token_type=str(seen))


def _handlers():
    login = {
        "request_deserializer": auth_pb.LoginRequest.FromString,
        "response_serializer": auth_pb.LoginResponse.SerializeToString,
    }
    handlers = {
        "Fail": grpc.unary_unary_rpc_method_handler(_fail, _identity, _identity),
        "WhoAmI": grpc.unary_unary_rpc_method_handler(_whoami, _identity, _identity),
        "Crash": grpc.unary_unary_rpc_method_handler(_crash, _identity, _identity),
        "Count": grpc.unary_stream_rpc_method_handler(_count, _identity, _identity),
        "Hold": grpc.unary_stream_rpc_method_handler(_hold, _identity, _identity),
        "HoldToo": grpc.unary_stream_rpc_method_handler(_hold, _identity, _identity),
        "HoldMore": grpc.unary_stream_rpc_method_handler(_hold, _identity, _identity),
        "NoPolicy": grpc.unary_unary_rpc_method_handler(_whoami, _identity, _identity),
        "Login": grpc.unary_unary_rpc_method_handler(_login_name, **login),
        "LoginStream": grpc.stream_unary_rpc_method_handler(_count_logins, **login),
    }
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


def _server(handler=None, policies=None, verifier=None, error_details=no_details, **runtime):
    """A server of the factory on a free port with ``handler``'s methods (none by default)."""
    return create_server(
        "127.0.0.1:0",
        domain="test.mesh",
        services=[ServiceRegistration(SERVICE, add_generic_handler, handler)] if handler else [],
        policies=policies or {},
        verifier=verifier,
        settings=dataclasses.replace(RuntimeSettings.from_env(), **runtime),
        blocking=Blocking(1),
        error_details=error_details,
    )


def _probe_server(verifier, **runtime):
    public = ("Fail", "Crash", "Count", "Hold", "HoldToo", "Login", "LoginStream")
    policies = {
        **{f"/{SERVICE}/{name}": PUBLIC for name in public},
        f"/{SERVICE}/WhoAmI": requires("schema:read"),
    }
    return _server(_handlers(), policies, verifier, **runtime)


@pytest.fixture(scope="module")
def probe(verifier):
    with running(lambda: _probe_server(verifier, max_streams=2)) as server:
        yield server


@pytest.fixture(scope="module")
def channel(probe):
    with grpc.insecure_channel(probe.target) as ch:
        yield ch


def call(channel, method, token=None, request=b""):
    stub = channel.unary_unary(f"/{SERVICE}/{method}", _identity, _identity)
    metadata = [("authorization", f"Bearer {token}")] if token else None
    return stub(request, metadata=metadata, timeout=5)


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
    assert reason(caught.value) == "INVALID_ARGUMENT"
    assert error_info(caught.value).domain == "test.mesh"
    assert violated_fields(caught.value) == ["name", "kind"]


def test_unexpected_exception_is_internal_without_leaking(channel):
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, "Crash")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in caught.value.details()
    assert reason(caught.value) == "INTERNAL"


def test_stream_error_after_items(channel):
    stub = channel.unary_stream(f"/{SERVICE}/Count", _identity, _identity)
    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for item in stub(b"", timeout=5):
            received.append(item)
    assert received == [b"0", b"1", b"2"]
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert reason(caught.value) == "HEAD_MOVED"


def test_auth_required_and_permission_checked(channel, signer):
    with pytest.raises(grpc.RpcError) as missing:
        call(channel, "WhoAmI")
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(missing.value) == "TOKEN_MISSING"
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
    assert reason(caught.value) == "NO_POLICY"


NOT_UTF8 = bytes([0x0A, 2, 0xFF, 0xFE])
"""Field 1 (username) holding 0xFF 0xFE, as the transcoder sends a %FF%FE path segment."""
HOLDS_U0000 = auth_pb.LoginRequest(username="admin", password="a\x00b").SerializeToString()
REFUSED = [(NOT_UTF8, "username", "INVALID_UTF8"), (HOLDS_U0000, "password", "INVALID_CHARACTERS")]


@pytest.mark.parametrize(("bad", "field", "why"), REFUSED)
def test_a_request_refused_before_its_servicer_is_invalid_argument_naming_the_field(
    channel, bad, field, why
):
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, "Login", request=bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad_request,) = details(caught.value)["BadRequest"]
    assert [(v.field, v.reason) for v in bad_request.field_violations] == [(field, why)]


def test_bytes_that_do_not_parse_at_all_are_the_request_s_fault_and_unicode_passes(channel):
    with pytest.raises(grpc.RpcError) as garbage:
        call(channel, "Login", request=b"\x0a\xff\xff\xff")  # a length running past the end
    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(garbage.value)["BadRequest"][0].field_violations[0].field == "request"
    good = auth_pb.LoginRequest(username="ünïcode").SerializeToString()
    assert auth_pb.LoginResponse.FromString(call(channel, "Login", request=good)).token_type == (
        "ünïcode"
    )


@pytest.mark.parametrize(
    ("bad", "field"), [(bytes([0x12, 1, 0xC0]), "password"), (HOLDS_U0000, "password")]
)
def test_a_bad_message_in_a_request_stream_ends_it_with_invalid_argument(channel, bad, field):
    stub = channel.stream_unary(f"/{SERVICE}/LoginStream", _identity, _identity)
    good = auth_pb.LoginRequest(username="a").SerializeToString()
    with pytest.raises(grpc.RpcError) as caught:
        stub(iter([good, bad]), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == [field]
    assert auth_pb.LoginResponse.FromString(stub(iter([good, good]), timeout=5)).token_type == "2"


def test_each_streaming_method_has_its_own_bounded_places(probe, channel):
    method = f"/{SERVICE}/Hold"
    hold = channel.unary_stream(method, _identity, _identity)
    held = [hold(b"", timeout=30) for _ in range(2)]
    for stream in held:
        assert next(stream) == b"held"
    with pytest.raises(grpc.RpcError) as caught:
        next(hold(b"", timeout=5))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason(caught.value) == "TOO_MANY_STREAMS"
    # Another streaming method and unary calls keep their places.
    other = channel.unary_stream(f"/{SERVICE}/HoldToo", _identity, _identity)(b"", timeout=30)
    assert next(other) == b"held"
    assert call(channel, "Login", request=b"") == b""
    for stream in (*held, other):
        stream.cancel()
    eventually(
        lambda: probe.call(lambda: probe.server.open_streams(method)) == 0,
        timeout=5,
        interval=0.02,
        what="cancelled streams give their places back",
    )


def test_one_caller_holds_at_most_its_share_of_a_streaming_method(verifier, signer):
    """Each caller (a user, or an address when anonymous) holds at most its share of places.

    A method whose policy lifts the share admits one caller up to the method's own bound.
    """
    policies = {
        f"/{SERVICE}/Hold": requires("audit:read"),
        f"/{SERVICE}/HoldToo": Policy(permission="audit:read", bounded_per_caller=False),
        f"/{SERVICE}/HoldMore": PUBLIC,
    }

    def server() -> MeshServer:
        return _server(_handlers(), policies, verifier, max_streams=4, max_streams_per_caller=2)

    with running(server) as probe, grpc.insecure_channel(probe.target) as channel:

        def hold(method: str, user: str) -> grpc.Call:
            token = signer.mint(username=user, permissions=("audit:read",))
            stub = channel.unary_stream(f"/{SERVICE}/{method}", _identity, _identity)
            return stub(b"", metadata=[("authorization", f"Bearer {token}")], timeout=30)

        def refused(stream: grpc.Call) -> dict[str, str]:
            with pytest.raises(grpc.RpcError) as caught:
                next(stream)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert reason(caught.value) == "TOO_MANY_STREAMS"
            return dict(error_info(caught.value).metadata)

        alice = [hold("Hold", "alice") for _ in range(2)]
        assert [next(s) for s in alice] == [b"held", b"held"]
        assert refused(hold("Hold", "alice"))["scope"] == "caller"
        bob = [hold("Hold", "bob") for _ in range(2)]
        assert [next(s) for s in bob] == [b"held", b"held"]
        assert refused(hold("Hold", "carol"))["scope"] == "server"
        for stream in alice[:1]:
            stream.cancel()
        eventually(
            lambda: probe.call(lambda: probe.server.open_streams(f"/{SERVICE}/Hold")) == 3,
            timeout=5,
            interval=0.02,
            what="alice's place is given back",
        )
        again = hold("Hold", "alice")
        assert next(again) == b"held"
        # Without a share, one caller takes every place of the method.
        service = [hold("HoldToo", "svc") for _ in range(4)]
        assert [next(s) for s in service] == [b"held"] * 4
        # Anonymous callers share the share of their address.
        public = channel.unary_stream(f"/{SERVICE}/HoldMore", _identity, _identity)
        anonymous = [public(b"", timeout=30) for _ in range(2)]
        assert [next(s) for s in anonymous] == [b"held", b"held"]
        assert refused(public(b"", timeout=5))["scope"] == "caller"
        for stream in (*alice[1:], *bob, again, *service, *anonymous):
            stream.cancel()


def test_a_caller_with_its_share_of_the_pool_busy_does_not_hold_up_another(verifier, signer):
    """The interceptor names each call's caller, and the pool gives each caller its share."""
    blocking = Blocking(3, per_caller=2)
    release = threading.Event()
    started: list[str] = []

    def work() -> bytes:
        started.append(current_principal().username)
        release.wait(10)
        return b"done"

    async def slow(request, context):
        return await blocking.run(work)

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Slow": grpc.unary_unary_rpc_method_handler(slow, _identity, _identity)}
    )
    policies = {f"/{SERVICE}/Slow": requires("schema:read")}
    try:
        with (
            running(lambda: _server(handler, policies, verifier)) as probe,
            grpc.insecure_channel(probe.target) as channel,
        ):
            stub = channel.unary_unary(f"/{SERVICE}/Slow", _identity, _identity)

            def send(name: str) -> grpc.Future:
                token = signer.mint(username=name, permissions=("schema:read",))
                metadata = [("authorization", f"Bearer {token}")]
                return stub.future(b"", metadata=metadata, timeout=30)

            alice = [send("alice") for _ in range(5)]
            eventually(lambda: len(started) == 2, timeout=5, interval=0.02, what="alice's two")
            time.sleep(0.2)
            assert started == ["alice", "alice"]  # a thread is free, but not for her
            bob = send("bob")
            eventually(lambda: len(started) == 3, timeout=5, interval=0.02, what="bob's call")
            assert started[2] == "bob"
            release.set()
            assert [f.result() for f in (*alice, bob)] == [b"done"] * 6
    finally:
        release.set()
        blocking.close()


def test_each_rpc_is_logged_with_method_code_and_caller(channel, signer, capsys):
    logging.getLogger("mesh.rpc").setLevel(logging.INFO)
    try:
        capsys.readouterr()
        health = health_pb2_grpc.HealthStub(channel)
        health.Check(health_pb2.HealthCheckRequest(service=SERVICE))  # a line a second: none
        call(channel, "WhoAmI", signer.mint(username="carol", permissions=("schema:read",)))
        with pytest.raises(grpc.RpcError):
            call(channel, "Fail")
        with pytest.raises(grpc.RpcError):
            health.Check(health_pb2.HealthCheckRequest(service="nope"))  # a failed one: logged
        # The line of a failed call is written as its status goes out: wait for it.
        lines: list[dict] = []

        def all_written() -> bool:
            lines.extend(json.loads(line) for line in capsys.readouterr().out.splitlines())
            return len(lines) >= 3

        eventually(all_written, timeout=5, interval=0.01, what="the calls are logged")
    finally:
        logging.getLogger("mesh.rpc").setLevel(logging.NOTSET)
    assert [(e["method"], e["code"], e["user"]) for e in lines if e["msg"] == "rpc"] == [
        (f"/{SERVICE}/WhoAmI", "OK", "carol"),
        (f"/{SERVICE}/Fail", "INVALID_ARGUMENT", None),
        ("/grpc.health.v1.Health/Check", "NOT_FOUND", None),
    ]
    assert all(e["logger"] == "mesh.rpc" and e["duration_ms"] >= 0 for e in lines)


def test_health_waits_for_readiness_before_serving():
    ready = threading.Event()

    def build():
        mesh = _server()
        mesh.readiness = lambda: asyncio.to_thread(ready.wait)
        return mesh

    with running(build) as mesh, grpc.insecure_channel(mesh.target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        check = health_pb2.HealthCheckRequest()
        assert stub.Check(check, timeout=5).status == health_pb2.HealthCheckResponse.NOT_SERVING
        ready.set()
        eventually(
            lambda: stub.Check(check, timeout=5).status == health_pb2.HealthCheckResponse.SERVING,
            timeout=10,
            what="the server becomes SERVING",
        )


def test_drain_callbacks_end_long_lived_streams_so_they_finish_cleanly():
    """A subscription-like stream released by ``on_drain`` ends OK within the grace period.

    Otherwise it would be cancelled when the grace runs out.
    """
    released = asyncio.Event()

    async def follow(request, context):
        yield b"first"
        await released.wait()
        yield b"drained"

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Follow": grpc.unary_stream_rpc_method_handler(follow, _identity, _identity)}
    )

    def build():
        mesh = _server(handler, {f"/{SERVICE}/Follow": PUBLIC})
        mesh.on_drain.append(released.set)
        return mesh

    mesh = RunningServer(build)
    with grpc.insecure_channel(mesh.target) as ch:
        stream = ch.unary_stream(f"/{SERVICE}/Follow", _identity, _identity)(b"", timeout=120)
        assert next(stream) == b"first"
        stopper = threading.Thread(target=mesh.stop, args=(60,))
        stopper.start()
        assert list(stream) == [b"drained"]
        assert stream.code() == grpc.StatusCode.OK
        stopper.join(60)
        assert not stopper.is_alive()


def test_a_blocking_handler_is_refused_with_internal_rather_than_run(verifier):
    def blocking_handler(request, context):
        return request

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Sync": grpc.unary_unary_rpc_method_handler(blocking_handler)}
    )

    def build():
        return _server(handler, {f"/{SERVICE}/Sync": PUBLIC}, verifier)

    with running(build) as mesh, grpc.insecure_channel(mesh.target) as ch:
        with pytest.raises(grpc.RpcError) as caught:
            ch.unary_unary(f"/{SERVICE}/Sync")(b"", timeout=5)
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert reason(caught.value) == "INTERNAL"
        assert "blocking_handler" not in caught.value.details()


class _Clash:
    """A domain object an error carries, as the OMS's merge conflicts are."""

    def __init__(self, where: str) -> None:
        self.where = where


async def _clash(request, context):
    raise errors.FailedPrecondition("it clashes", reason="CLASH", details=[_Clash("here")])


def _describe(detail):
    return error_details_pb2.LocalizedMessage(locale="en", message=detail.where)


def _clashing():
    return grpc.method_handlers_generic_handler(
        SERVICE, {"Clash": grpc.unary_unary_rpc_method_handler(_clash, _identity, _identity)}
    )


def test_the_domain_objects_of_an_error_reach_the_caller_as_messages_of_the_api():
    def build():
        return _server(_clashing(), {f"/{SERVICE}/Clash": PUBLIC}, error_details=_describe)

    with (
        running(build) as mesh,
        grpc.insecure_channel(mesh.target) as ch,
        pytest.raises(grpc.RpcError) as caught,
    ):
        ch.unary_unary(f"/{SERVICE}/Clash")(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    (message,) = details(caught.value)["LocalizedMessage"]
    assert message.message == "here"


def test_an_error_no_message_describes_is_internal_rather_than_a_crash():
    with (
        running(lambda: _server(_clashing(), {f"/{SERVICE}/Clash": PUBLIC})) as mesh,
        grpc.insecure_channel(mesh.target) as ch,
        pytest.raises(grpc.RpcError) as caught,
    ):
        ch.unary_unary(f"/{SERVICE}/Clash")(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert reason(caught.value) == "INTERNAL"
