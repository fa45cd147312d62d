"""A canned service: the server factory answering given methods with recorded bytes.

It stands where a real service would (same port, same Envoy routes) to measure the ceiling of
everything around the service's own work: Envoy, the transport, the runtime and its
interceptor. ``python -m bench._canned ADDRESS /pkg.Svc/Method=FILE [...]`` listens on
``ADDRESS`` (or on the address in the environment variable of that name, as the real service
would) and answers each method with the bytes of its file, until SIGTERM. ``Echo`` answers with
the request, and ``Hold`` opens a stream that never ends.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc

from common.blocking import Blocking
from common.config import RuntimeSettings
from common.interceptors import PUBLIC
from common.server import (
    MeshServer,
    ServiceRegistration,
    add_generic_handler,
    create_server,
    serve,
)

ECHO = "/bench.v1.Bench/Echo"
HOLD = "/bench.v1.Bench/Hold"


def _identity(data: bytes) -> bytes:
    return data


def _answer(recorded: bytes) -> Callable[[bytes, Any], Any]:
    async def answer(request: bytes, context: Any) -> bytes:
        return recorded

    return answer


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _hold(request: bytes, context: Any) -> AsyncIterator[bytes]:
    await context.send_initial_metadata(())  # the caller knows the stream is open
    await asyncio.Event().wait()
    yield b""


def _registration(
    handler: grpc.GenericRpcHandler, service: str
) -> ServiceRegistration[grpc.GenericRpcHandler]:
    return ServiceRegistration(service, add_generic_handler, handler)


def build(address: str, answers: dict[str, Path]) -> MeshServer:
    """A server on ``address`` answering each method with its recorded bytes.

    Also ``echo`` and ``hold``; every method is public, as an empty handler has nothing to guard.
    """
    handlers: dict[str, dict[str, grpc.RpcMethodHandler]] = defaultdict(dict)
    for method, path in answers.items():
        service, name = method.strip("/").split("/")
        handlers[service][name] = grpc.unary_unary_rpc_method_handler(
            _answer(path.read_bytes()), _identity, _identity
        )
    bench_service, echo = ECHO.strip("/").split("/")
    handlers[bench_service][echo] = grpc.unary_unary_rpc_method_handler(_echo, _identity, _identity)
    handlers[bench_service][HOLD.rsplit("/", 1)[1]] = grpc.unary_stream_rpc_method_handler(
        _hold, _identity, _identity
    )
    registrations = [
        _registration(grpc.method_handlers_generic_handler(service, methods), service)
        for service, methods in handlers.items()
    ]
    policies = {
        f"/{service}/{name}": PUBLIC for service, methods in handlers.items() for name in methods
    }
    return create_server(
        address,
        domain="bench.mesh",
        services=registrations,
        policies=policies,
        verifier=None,
        settings=RuntimeSettings.from_env(),
        blocking=Blocking(1),
    )


def main(argv: list[str]) -> None:
    runtime = RuntimeSettings.from_env()
    address = os.environ.get(argv[0], argv[0])
    answers = {}
    for pair in argv[1:]:
        method, _, path = pair.partition("=")
        answers[method] = Path(path)
    # Logs as a service does: its access log costs what a service's does.
    serve("canned", runtime, lambda: build(address, answers))


if __name__ == "__main__":
    main(sys.argv[1:])
