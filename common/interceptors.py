"""Server interceptors every service installs: request logging, error mapping, authentication.

Each wraps the behaviour of any of the four handler kinds the same way, so servicers raise plain
domain errors and read the caller from :func:`current_principal`.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from common import errors
from common.auth import Principal, TokenVerifier
from common.status import internal_status, to_status

log = logging.getLogger("mesh.rpc")

Behavior = Callable[[Any, grpc.ServicerContext], Any]
Around = Callable[[Behavior, Any, grpc.ServicerContext, str], Any]

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


PUBLIC = Policy(public=True)
AUTHENTICATED = Policy()


def requires(permission: str) -> Policy:
    return Policy(permission=permission)


_ALWAYS_PUBLIC_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


def _wrap_handler(
    handler: grpc.RpcMethodHandler, method: str, around: Around
) -> grpc.RpcMethodHandler:
    """Rebuild ``handler`` so ``around`` runs each call; streaming responses stay generators."""

    def unary(behavior: Behavior) -> Behavior:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            return around(behavior, request, context, method)

        return call

    def streaming(behavior: Behavior) -> Behavior:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            def drain(req: Any, ctx: grpc.ServicerContext) -> Any:
                yield from behavior(req, ctx)

            yield from around(drain, request, context, method)

        return call

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kwargs)
    return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kwargs)


class _Interceptor(grpc.ServerInterceptor):
    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return _wrap_handler(handler, handler_call_details.method, self.around)

    def around(
        self, behavior: Behavior, request: Any, context: grpc.ServicerContext, method: str
    ) -> Any:
        raise NotImplementedError


@dataclass
class _CallRecord:
    """What the outermost (logging) interceptor learns from inner ones about one call."""

    user: str | None = None


_call_record: contextvars.ContextVar[_CallRecord | None] = contextvars.ContextVar(
    "mesh_call_record", default=None
)


class LoggingInterceptor(_Interceptor):
    """One JSON log line per RPC with its method, status code, duration and caller."""

    def around(
        self, behavior: Behavior, request: Any, context: grpc.ServicerContext, method: str
    ) -> Any:
        start = time.perf_counter()
        record = _CallRecord()
        reset = _call_record.set(record)
        try:
            result = behavior(request, context)
        except BaseException:
            self._log(context, method, start, record)
            raise
        finally:
            _call_record.reset(reset)
        if isinstance(result, Iterator):
            return self._log_stream(result, context, method, start, record)
        self._log(context, method, start, record)
        return result

    def _log_stream(
        self,
        stream: Iterator[Any],
        context: grpc.ServicerContext,
        method: str,
        start: float,
        record: _CallRecord,
    ) -> Iterator[Any]:
        reset = _call_record.set(record)
        try:
            yield from stream
        finally:
            _call_record.reset(reset)
            self._log(context, method, start, record)

    @staticmethod
    def _log(context: grpc.ServicerContext, method: str, start: float, record: _CallRecord) -> None:
        code = context.code() or grpc.StatusCode.OK
        log.info(
            "rpc",
            extra={
                "method": method,
                "code": code.name if isinstance(code, grpc.StatusCode) else str(code),
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                "peer": context.peer(),
                "user": record.user,
            },
        )


class ErrorInterceptor(_Interceptor):
    """Turns domain errors into statuses with ErrorInfo; anything else into a bare INTERNAL."""

    def __init__(self, domain: str) -> None:
        self._domain = domain

    def around(
        self, behavior: Behavior, request: Any, context: grpc.ServicerContext, method: str
    ) -> Any:
        try:
            result = behavior(request, context)
        except errors.MeshError as exc:
            context.abort_with_status(to_status(exc, domain=self._domain))
        except Exception:
            if context.code() not in (None, grpc.StatusCode.OK):
                raise
            log.exception("unhandled error", extra={"method": method})
            context.abort_with_status(internal_status(domain=self._domain))
        if isinstance(result, Iterator):
            return self._guard_stream(result, context, method)
        return result

    def _guard_stream(
        self, stream: Iterator[Any], context: grpc.ServicerContext, method: str
    ) -> Iterator[Any]:
        try:
            yield from stream
        except errors.MeshError as exc:
            context.abort_with_status(to_status(exc, domain=self._domain))
        except Exception:
            if context.code() not in (None, grpc.StatusCode.OK) or not context.is_active():
                raise
            log.exception("unhandled error", extra={"method": method})
            context.abort_with_status(internal_status(domain=self._domain))


def bearer_token(metadata: Any) -> str:
    """The bearer token from ``authorization`` metadata, or an empty string."""
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


class AuthInterceptor(_Interceptor):
    """Deny by default: a method without a policy is refused, a token is verified otherwise."""

    def __init__(self, verifier: TokenVerifier | None, policies: Mapping[str, Policy]) -> None:
        self._verifier = verifier
        self._policies = dict(policies)

    def policy_for(self, method: str) -> Policy | None:
        if method.startswith(_ALWAYS_PUBLIC_PREFIXES):
            return PUBLIC
        return self._policies.get(method)

    def around(
        self, behavior: Behavior, request: Any, context: grpc.ServicerContext, method: str
    ) -> Any:
        policy = self.policy_for(method)
        if policy is None:
            raise errors.PermissionDenied(
                f"method {method} has no access policy", reason="NO_POLICY"
            )
        principal: Principal | None = None
        token = bearer_token(context.invocation_metadata())
        if not policy.public:
            if self._verifier is None:
                raise errors.Unauthenticated("token verification is not configured")
            principal = self._verifier.verify_access(token)
            record = _call_record.get()
            if record is not None:
                record.user = principal.username
            if policy.permission is not None:
                principal.require(policy.permission)
        reset = _principal.set(principal)
        try:
            result = behavior(request, context)
        finally:
            _principal.reset(reset)
        if isinstance(result, Iterator):
            return self._stream_as(principal, result)
        return result

    @staticmethod
    def _stream_as(principal: Principal | None, stream: Iterator[Any]) -> Iterator[Any]:
        reset = _principal.set(principal)
        try:
            yield from stream
        finally:
            _principal.reset(reset)
