"""The example request and response of each operation, from ``gateway/examples.json``.

The file is handwritten, in the order the examples can be replayed against a real mesh (log
in, create a branch, an object type, ...), keyed by gRPC method (``oms.v1.SchemaService/
CreateObjectType``). Each example has ``parameters`` (path and query, by OpenAPI name), an
optional ``body``, an optional ``caller`` (the access token it is sent with; an admin's when
absent) and the ``response`` the mesh answered. A request string may hold references, which
the document fills from the examples and a replay from what the real mesh answered:

- ``{{<method>:<path>}}``: a field of an earlier example's response (``user.user_id``,
  ``sessions.0.session_id``);
- ``{{unique:<name>}}``: a name that a replay makes unique (the end-to-end tests share ``main``);
- ``{{totp:<method>:<path>}}``: a current TOTP code of the secret at that field.

A key with a ``#label`` (``CreateProposal#to-close``) is a step only a replay takes: a second
resource of a kind the document shows once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyotp

EXAMPLES_PATH = Path(__file__).resolve().parent / "examples.json"
_REFERENCE = re.compile(r"\{\{([^}]+)\}\}")
TOTP_EPOCH = 1_767_225_600
"""The moment (2026-01-01) a documented TOTP code is computed for: a code is good for 30 s."""


def load(path: Path = EXAMPLES_PATH) -> dict[str, dict[str, Any]]:
    """The examples by gRPC method, in replay order."""
    return dict(json.loads(path.read_text()))


def field(response: Any, path: str) -> Any:
    """The value at a dotted ``path`` (list items by index) of a JSON ``response``."""
    value = response
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def fill(value: Any, lookup: Callable[[str], str]) -> Any:
    """``value`` with every ``{{reference}}`` in its strings replaced by ``lookup(reference)``."""
    if isinstance(value, str):
        return _REFERENCE.sub(lambda match: lookup(match.group(1)), value)
    if isinstance(value, list):
        return [fill(item, lookup) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, lookup) for key, item in value.items()}
    return value


def resolver(
    responses: Mapping[str, Any], unique: Callable[[str], str], now: Callable[[], int]
) -> Callable[[str], str]:
    """Resolves references against ``responses`` by method, ``unique`` names and TOTP at ``now``."""

    def lookup(reference: str) -> str:
        kind, _, rest = reference.partition(":")
        if kind == "unique":
            return unique(rest)
        if kind == "totp":
            method, _, path = rest.rpartition(":")
            return str(pyotp.TOTP(str(field(responses[method], path))).at(now()))
        method, _, path = reference.rpartition(":")
        return str(field(responses[method], path))

    return lookup


def documented(examples: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The examples as the OpenAPI document shows them: references filled from the examples."""
    responses = {method: example["response"] for method, example in examples.items()}
    lookup = resolver(responses, unique=lambda name: name, now=lambda: TOTP_EPOCH)
    return {method: fill(dict(example), lookup) for method, example in examples.items()}
