"""A pytest plugin: every ErrorInfo reason a real server answers must be declared for its RPC.

The in-process servers of the tests (``tests/support/servers.py``) all map errors in one place,
``MeshInterceptor._fail``; the plugin wraps it, records (method, reason) of every error of
the mesh's own RPCs, and at the end of the session fails the run if a recorded reason is
neither in the service's ``REASONS`` for that RPC nor one of the runtime's that apply to it
(``gateway/reasons.py``). So a new refusal that some test exercises cannot go undocumented in
the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from common import errors
from common.interceptors import MeshInterceptor

_recorded: set[tuple[str, str]] = set()
_undeclared: list[tuple[str, str]] = []


def _reason(exc: Exception) -> str | None:
    if isinstance(exc, errors.MeshError):
        return exc.reason
    if isinstance(exc, grpc.aio.AbortError):
        return None  # the handler answered with a status of its own
    return "INTERNAL"


def pytest_configure(config: pytest.Config) -> None:
    original = MeshInterceptor._fail

    async def recording(self: MeshInterceptor, exc: Exception, method: str, context: Any) -> None:
        reason = _reason(exc)
        if reason is not None:
            _recorded.add((method, reason))
        await original(self, exc, method, context)

    MeshInterceptor._fail = recording  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from gateway import reasons

    declared = reasons.declared()
    _undeclared.extend(
        (method, reason)
        for method, reason in sorted(_recorded)
        if method in declared and reason not in declared[method].all
    )
    if _undeclared and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _undeclared:
        terminalreporter.section("undeclared error reasons")
        terminalreporter.write_line(
            "these RPCs answered reasons their service's REASONS does not list:"
        )
        for method, reason in _undeclared:
            terminalreporter.write_line(f"  {method}: {reason}")
