r"""The one JSON encoding the mesh hashes and compares: sorted keys, no spaces, UTF-8, finite.

Content addresses in the OMS (resources, trees, commits) and the Audit Service's hash chain
are SHA-256 over this text, so it must never change: equal values give equal text, and a
value with NaN or an infinity has no text at all (ValueError). ``ensure_ascii`` is off, so
text stays UTF-8 as it was written rather than ``\u`` escapes.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

NOT_FINITE = "numbers must be finite (no NaN or Infinity)"
"""What a caller is told of a value that has no canonical text."""
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_Chunks = Callable[[Any, int], Any]
_MAKE_C_ENCODER: Callable[..., _Chunks] | None = getattr(json.encoder, "c_make_encoder", None)
_FAST: _Chunks | None = (
    None
    if _MAKE_C_ENCODER is None
    else _MAKE_C_ENCODER(
        None, _ENCODER.default, encode_basestring, None, ":", ",", True, False, False
    )
)
"""The C encoder ``_ENCODER.encode`` builds on every call, with its settings, built once.

``encode`` spends more on its Python wrapping (and a fresh encoder with a fresh dict of the
containers it has entered, which detects cycles) than the C encoder spends on a small value;
audit ingest encodes every event's data. Without that dict the encoder cannot name a cycle,
which it then meets as unbounded recursion: such a value goes to ``encode`` again, which
refuses it as it always did.
"""


def canonical_json(value: Any) -> str:
    """``value`` in its canonical spelling; ValueError for a number that is not finite."""
    if _FAST is None:
        return _ENCODER.encode(value)
    try:
        return "".join(_FAST(value, 0))
    except RecursionError:
        return _ENCODER.encode(value)  # a cycle (ValueError) or a value truly that deep


def nested_deeper(value: Any, text: str, limit: int) -> bool:
    """Whether ``value`` (of canonical ``text``) has objects and lists more than ``limit`` deep.

    ``value`` itself is the first level. Protobuf decoders stop at 100 levels of messages and
    a JSON level costs two or three of them, so a value nested near that could be stored and
    then never read back inside a larger message. The text's brackets settle almost every
    value without a walk: there are at least as many of them as levels.
    """
    if text.count("{") + text.count("[") <= limit:
        return False
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True
