r"""The one JSON encoding the mesh hashes and compares: sorted keys, no spaces, UTF-8, finite.

Content addresses in the OMS (resources, trees, commits) and the Audit Service's hash chain
are SHA-256 over this text, so it must never change: equal values give equal text, and a
value with NaN or an infinity has no text at all (ValueError). ``ensure_ascii`` is off, so
text stays UTF-8 as it was written rather than ``\u`` escapes.
"""

from __future__ import annotations

import json
from typing import Any

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """``value`` in its canonical spelling; ValueError for a number that is not finite."""
    return _ENCODER.encode(value)
