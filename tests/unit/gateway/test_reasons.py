"""The declared ErrorInfo reasons (``REASONS`` beside each service's ``POLICIES``) hold to the code.

Two static checks here, one per direction: every reason a service's code writes as
``reason="..."`` is declared for one of its RPCs, and every declared reason is a string the
service's or the runtime's code holds. ``tests/support/reasons.py`` checks each RPC's own
list against what real servers answer during the tests.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from common import reasons as runtime
from gateway import descriptors, reasons

ROOT = Path(__file__).resolve().parents[3]
_REASON = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")


def _sources(package: str) -> list[ast.AST]:
    return [
        ast.parse(path.read_text())
        for path in sorted((ROOT / package).rglob("*.py"))
        if "v1" not in path.relative_to(ROOT / package).parts
    ]


def _raised(package: str) -> set[str]:
    """Every ``reason="UPPER_SNAKE"`` keyword in the package's code."""
    return {
        node.value.value
        for tree in _sources(package)
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword)
        and node.arg == "reason"
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and _REASON.match(node.value.value)
    }


def _strings(package: str) -> set[str]:
    return {
        node.value
        for tree in _sources(package)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _declared(package: str) -> set[str]:
    return {
        reason
        for path, found in reasons.declared().items()
        if path.startswith(f"/{package}.")
        for reason in found.all
    }


@pytest.mark.parametrize("package", ["users", "oms", "audit"])
def test_every_reason_the_code_raises_is_declared(package: str) -> None:
    undeclared = _raised(package) - _declared(package)
    assert not undeclared, f"declare these in {package}/servicers.py REASONS: {undeclared}"


@pytest.mark.parametrize("package", ["users", "oms", "audit"])
def test_every_declared_reason_is_in_the_code(package: str) -> None:
    invented = _declared(package) - _strings(package) - _strings("common")
    assert not invented, f"{package} declares reasons no code answers: {invented}"


def test_the_tables_name_real_rpcs() -> None:
    paths = {m.grpc_path for s in descriptors.services(descriptors.load()) for m in s.methods}
    _, own = reasons.tables()
    assert set(own) <= paths, set(own) - paths
    for declared in own.values():
        assert all(_REASON.match(reason) for reason in declared), declared
    assert set(runtime.TOKEN) <= _strings("common")
