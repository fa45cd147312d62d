"""The server interceptor every service installs: access log, errors, auth, stream limits.

One interceptor wraps each method's handler once (cached by method name), so a call pays for
one extra coroutine, not one per concern. Around every call it:

- authenticates the caller by the method's policy, deny by default (by bearer token, or by
  the ticket a request carries where the policy takes one), and exposes them to the servicer
  through :func:`current_principal`;
- refuses request bytes that do not parse with INVALID_ARGUMENT naming the field, where
  protobuf would fail inside gRPC with a bare error (the deserializer is made tolerant, and
  the error raised once the caller is let in), and a string field holding U+0000 likewise
  (:mod:`common.undecodable`);
- makes the caller's client address current (:mod:`common.origin`), for the events the call
  emits, and the call's request id and trace context (:mod:`common.tracing`), for its log
  lines, its errors (a ``google.rpc.RequestInfo`` detail), its events and its calls onward;
  with tracing on, the call is a server span;
- reports each call refused for who made it (PERMISSION_DENIED, or UNAUTHENTICATED where the
  method needs a token) to the server's :class:`common.denials.DenialLog`;
- bounds the open calls of each streaming method, so a flood of one kind of stream cannot
  take the places of another;
- turns domain errors into statuses with ErrorInfo through :mod:`common.status`, and anything
  else into a bare INTERNAL whose details stay in the log;
- counts the call in the server's :class:`common.metrics.Metrics` (started, in flight,
  handled by code, latency) and writes one access log line with the method, status code,
  duration and caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import grpc
from prometheus_client.core import GaugeMetricFamily

from common import errors, origin, times, tracing
from common.auth import Principal, TokenVerifier
from common.config import Networks
from common.denials import DenialLog
from common.logs import AccessLog
from common.metrics import Metrics, RpcMetrics, gauge, split_method
from common.status import Describe, internal_status, no_details, to_status
from common.tickets import TicketBook
from common.undecodable import nul_character, nul_field, undecodable

log = logging.getLogger("mesh.rpc")

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "mesh_principal", default=None
)


def current_principal() -> Principal:
    """The verified caller of the RPC being served; Unauthenticated if it is a public RPC."""
    principal = _principal.get()
    if principal is None:
        raise errors.Unauthenticated("this call needs a bearer token", reason="TOKEN_MISSING")
    return principal


@dataclass(frozen=True)
class Policy:
    """Who may call a method: anyone (public), any authenticated caller, or one permission."""

    public: bool = False
    permission: str | None = None
    ticket: Callable[[Any], str] | None = None
    """For a method a browser opens, which cannot send headers: the ticket (see
    :mod:`common.tickets`) its request carries, or empty. A request with one is authenticated
    by the ticket, issued for this very method, instead of by a bearer token."""
    bounded_per_caller: bool = True
    """For a streaming method: whether one caller holds at most ``max_streams_per_caller`` of
    its places, so that nobody can take them all. Off only where the caller is a service
    account holding a place for each follower it runs."""


PUBLIC = Policy(public=True)
AUTHENTICATED = Policy()


def requires(permission: str) -> Policy:
    return Policy(permission=permission)


HEALTH_CHECK = "/grpc.health.v1.Health/Check"
"""The call the gateway makes of every service each second; an OK one writes no access line."""

_ALWAYS_PUBLIC_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


Context = Any
"""A servicer's ``grpc.aio.ServicerContext``. Servicers use little of it (:func:`header`, initial
metadata), and grpcio ships no types for it."""


def header(context: Context, name: str) -> str:
    """A text metadata value of the call ``context`` serves, or empty.

    What a servicer reads of its call beyond the message: the HTTP headers the gateway passes
    on (``user-agent``, ``last-event-id``, an OAuth client's ``authorization``).
    """
    for key, value in context.invocation_metadata() or ():
        if key == name and isinstance(value, str):
            return value
    return ""


def bearer_token(metadata: Any) -> str:
    """The bearer token from ``authorization`` metadata, or an empty string."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


class _Undecodable:
    """Stands in for a request whose bytes did not parse, so the error is ours to report."""

    __slots__ = ("error",)

    def __init__(self, error: errors.InvalidArgument) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    message_type = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_type, "DESCRIPTOR", None)

    def parse(data: bytes) -> Any:
        try:
            message = deserializer(data)
        except Exception:
            return _Undecodable(undecodable(descriptor, data))
        field = nul_field(message, data) if descriptor is not None else None
        return message if field is None else _Undecodable(nul_character(field))

    return parse


def _checked(request: Any, *, streaming: bool) -> Any:
    """The request, or its stream, refusing what did not parse (as it is reached)."""
    if streaming:
        return _checked_stream(request)
    if type(request) is _Undecodable:
        raise request.error
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _checked(request, streaming=False)


Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]


class _Record:
    """What the access log line of one call says."""

    __slots__ = ("caller_slot", "cancelled", "holds_slot", "method", "metrics", "start", "user")

    def __init__(self, method: str, metrics: RpcMetrics) -> None:
        self.method = method
        self.metrics = metrics
        self.start = time.perf_counter()
        self.user: str | None = None
        self.cancelled = False
        self.holds_slot = False
        self.caller_slot: tuple[str, str] | None = None


class MeshInterceptor(grpc.aio.ServerInterceptor):
    """See the module docstring; one per server, built by :func:`common.server.create_server`."""

    def __init__(
        self,
        *,
        domain: str,
        verifier: TokenVerifier | None,
        policies: Mapping[str, Policy],
        max_streams: int,
        max_streams_per_caller: int,
        describe: Describe = no_details,
        trusted_proxies: Networks = (),
        denials: DenialLog | None = None,
        tickets: TicketBook | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """Set up the per-call checks.

        ``trusted_proxies`` may say who the client is; ``denials`` hears of refused calls;
        ``tickets`` redeems the tickets of methods whose policy accepts one; ``metrics``
        counts the calls (a registry of its own if not given).
        """
        self._domain = domain
        self._trusted = trusted_proxies
        self._denials = denials
        self._describe = describe
        self._verifier = verifier
        self._tickets = tickets
        self._policies = dict(policies)
        self._max_streams = max_streams
        self._max_per_caller = max_streams_per_caller
        self._open: dict[str, int] = {}
        self._open_by_caller: dict[tuple[str, str], int] = {}
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}
        self._access = AccessLog("mesh.rpc")
        self._metrics = Metrics() if metrics is None else metrics
        self._metrics.sample(self._stream_samples)

    def _stream_samples(self) -> list[GaugeMetricFamily]:
        """Open streams per streaming method, and the limit they meet; read at scrape time."""
        opened = GaugeMetricFamily(
            "grpc_server_open_streams",
            "Open calls of a streaming method, each holding one of its places.",
            labels=["grpc_service", "grpc_method"],
        )
        for method, count in sorted(self._open.items()):
            opened.add_metric(list(split_method(method)), count)
        return [
            opened,
            gauge(
                "grpc_server_max_streams",
                "Open calls allowed per streaming method.",
                self._max_streams,
            ),
        ]

    def open_streams(self, method: str) -> int:
        """How many calls of a streaming method are open now."""
        return self._open.get(method, 0)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None  # gRPC answers UNIMPLEMENTED
            wrapped = self._wrap(handler, method)
            self._wrapped[method] = wrapped
        return wrapped

    def _policy_for(self, method: str) -> Policy | None:
        if method.startswith(_ALWAYS_PUBLIC_PREFIXES):
            return PUBLIC
        return self._policies.get(method)

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        policy = self._policy_for(method)
        serializers = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            rpc = self._metrics.rpc(method, "unary")
            behavior = self._unary(handler.unary_unary, method, rpc, policy, streaming=False)
            return grpc.unary_unary_rpc_method_handler(behavior, **serializers)
        if handler.stream_unary:
            rpc = self._metrics.rpc(method, "client_stream")
            behavior = self._unary(handler.stream_unary, method, rpc, policy, streaming=True)
            return grpc.stream_unary_rpc_method_handler(behavior, **serializers)
        inner = handler.unary_stream or handler.stream_stream
        streaming_in = handler.stream_stream is not None
        rpc = self._metrics.rpc(method, "bidi_stream" if streaming_in else "server_stream")
        if inspect.isasyncgenfunction(inner):
            behavior = self._generator(inner, method, rpc, policy, streaming=streaming_in)
        else:
            behavior = self._writer(inner, method, rpc, policy, streaming=streaming_in)
        if streaming_in:
            return grpc.stream_stream_rpc_method_handler(behavior, **serializers)
        return grpc.unary_stream_rpc_method_handler(behavior, **serializers)

    def _unary(
        self,
        inner: Behavior,
        method: str,
        rpc: RpcMetrics,
        policy: Policy | None,
        *,
        streaming: bool,
    ) -> Behavior:
        inner = _coroutine(inner, method)

        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._guarded(method, rpc, policy, context, stream=False, request=request):
                return await inner(_checked(request, streaming=streaming), context)

        return call

    def _generator(
        self,
        inner: Behavior,
        method: str,
        rpc: RpcMetrics,
        policy: Policy | None,
        *,
        streaming: bool,
    ) -> Behavior:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._guarded(method, rpc, policy, context, stream=True, request=request):
                async for response in inner(_checked(request, streaming=streaming), context):
                    yield response

        return call

    def _writer(
        self,
        inner: Behavior,
        method: str,
        rpc: RpcMetrics,
        policy: Policy | None,
        *,
        streaming: bool,
    ) -> Behavior:
        """For streaming handlers written with ``context.write`` rather than ``yield``."""
        inner = _coroutine(inner, method)

        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            async with self._guarded(method, rpc, policy, context, stream=True, request=request):
                await inner(_checked(request, streaming=streaming), context)

        return call

    @contextlib.asynccontextmanager
    async def _guarded(
        self,
        method: str,
        rpc: RpcMetrics,
        policy: Policy | None,
        context: grpc.aio.ServicerContext[Any, Any],
        *,
        stream: bool,
        request: Any,
    ) -> AsyncIterator[None]:
        """Everything around one call: the caller, a stream's place, errors, the log line.

        ``request`` is the message, or the request stream of a client-streaming method.
        """
        record = _Record(method, rpc)
        rpc.start()
        metadata = context.invocation_metadata()
        span = tracing.begin(method, metadata)
        address = origin.derive(context.peer(), metadata, self._trusted)
        origin.serve_from(address)
        try:
            record.user = await self._authorize(policy, method, context, request)
            caller = origin.serve_caller(record.user)
            if stream:
                bounded = policy is None or policy.bounded_per_caller
                self._take_slot(record, caller if bounded else None)
            yield
        except asyncio.CancelledError:
            record.cancelled = True
            raise
        except Exception as exc:
            if self._denials is not None and _refuses_caller(exc, policy):
                principal = _principal.get()
                await self._denials.denied(
                    method=method,
                    code=_CODES[type(exc)],
                    reason=exc.reason,
                    actor=principal.username if principal else "",
                    client_address=address,
                )
            await self._fail(exc, method, context)
        finally:
            self._release_slot(record)
            code = self._finish(record, context)
            if span is not None:
                span.finish(code, server_fault=code in SERVER_FAULTS)

    async def _authorize(
        self,
        policy: Policy | None,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        request: Any,
    ) -> str | None:
        """The caller's name (None for a public method), with the principal made current."""
        if policy is None:
            raise errors.PermissionDenied(
                f"method {method} has no access policy", reason="NO_POLICY"
            )
        if policy.public:
            return None
        ticket = ""
        if policy.ticket is not None and type(request) is not _Undecodable:
            ticket = policy.ticket(request)
        if ticket:
            if self._tickets is None:
                raise errors.Unauthenticated(
                    "this server accepts no tickets", reason="TICKET_INVALID"
                )
            principal = self._tickets.redeem(ticket, purpose=method)
        elif self._verifier is None:
            raise errors.Unauthenticated("token verification is not configured")
        else:
            principal = await self._verifier.authenticate(
                bearer_token(context.invocation_metadata())
            )
        _principal.set(principal)  # known even if refused, so the refusal names them
        if policy.permission is not None:
            principal.require(policy.permission)
        return principal.username

    def _take_slot(self, record: _Record, caller: str | None) -> None:
        """A place of the method, and of the caller's share of it unless ``caller`` is None.

        Callers are told apart by their name, anonymous ones by their address.
        """
        method = record.method
        open_now = self._open.get(method, 0)
        if open_now >= self._max_streams:
            raise errors.ResourceExhausted(
                f"{open_now} calls of {method} are open, the most this server allows; retry later",
                reason="TOO_MANY_STREAMS",
                metadata={"method": method, "limit": str(self._max_streams), "scope": "server"},
            )
        if caller is not None:
            key = (method, caller)
            mine = self._open_by_caller.get(key, 0)
            if mine >= self._max_per_caller:
                raise errors.ResourceExhausted(
                    f"this caller holds {mine} calls of {method}, the most one caller may; "
                    "close one first",
                    reason="TOO_MANY_STREAMS",
                    metadata={
                        "method": method,
                        "limit": str(self._max_per_caller),
                        "scope": "caller",
                    },
                )
            self._open_by_caller[key] = mine + 1
            record.caller_slot = key
        self._open[method] = open_now + 1
        record.holds_slot = True

    def _release_slot(self, record: _Record) -> None:
        if record.holds_slot:
            self._open[record.method] -= 1
        key = record.caller_slot
        if key is not None:
            left = self._open_by_caller[key] - 1
            if left:
                self._open_by_caller[key] = left
            else:
                del self._open_by_caller[key]

    async def _fail(
        self, exc: Exception, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        """Answer with the status ``exc`` stands for; aborts (which raises) or re-raises."""
        if isinstance(exc, grpc.aio.AbortError):
            raise exc  # the handler aborted with a status of its own
        call = tracing.current()
        request_id = call.request_id if call is not None else ""
        if isinstance(exc, errors.MeshError):
            try:
                status = to_status(
                    exc, domain=self._domain, describe=self._describe, request_id=request_id
                )
            except Exception:
                log.exception("cannot describe an error", extra={"method": method})
            else:
                await context.abort_with_status(status)
        log.error("unhandled error", extra={"method": method}, exc_info=exc)
        await context.abort_with_status(internal_status(domain=self._domain, request_id=request_id))

    def _finish(self, record: _Record, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        """Count the call and write its access log line; the name of its status code."""
        code = context.code()
        name: str
        if isinstance(code, grpc.StatusCode):
            name = code.name
        else:
            name = "CANCELLED" if record.cancelled else "OK"
        seconds = time.perf_counter() - record.start
        record.metrics.finish(name, seconds)
        if name == "OK" and record.method == HEALTH_CHECK:
            return name  # the gateway asks every second: counted, but no line each time
        self._access.write(
            "rpc",
            times.now(),
            method=record.method,
            code=name,
            duration_ms=round(seconds * 1000, 3),
            user=record.user,
        )
        return name


SERVER_FAULTS = frozenset({"INTERNAL", "UNKNOWN", "UNAVAILABLE", "DATA_LOSS", "DEADLINE_EXCEEDED"})
"""Codes that say the server failed, rather than answered the caller (a span in error)."""

_CODES: dict[type[Exception], str] = {
    errors.PermissionDenied: "PERMISSION_DENIED",
    errors.Unauthenticated: "UNAUTHENTICATED",
}


def _refuses_caller(exc: Exception, policy: Policy | None) -> TypeGuard[errors.MeshError]:
    """Whether ``exc`` refuses the caller for who they are, on a method that is not public.

    A public method's UNAUTHENTICATED (a wrong password, a refused refresh token) is its answer,
    which its own events report.
    """
    return type(exc) in _CODES and (policy is None or not policy.public)


def _coroutine(inner: Behavior, method: str) -> Behavior:
    """``inner`` if it is a coroutine function; else a stand-in answering INTERNAL.

    A blocking handler would stall every other call on the loop.
    """
    if inspect.iscoroutinefunction(inner):
        return inner
    log.error("handler is not a coroutine function; answering INTERNAL", extra={"method": method})

    async def broken(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        raise TypeError(f"{method}: handlers of the mesh are coroutines, got {inner!r}")

    return broken
