"""Pagination every API of the mesh shares: page sizes and opaque page tokens (AIP-158).

A token carries the state a list needs to go on (the last key returned, the commit it reads,
...) and a digest of the query that issued it: its URL-safe, unpadded base64 of the canonical
JSON ``{"q": digest, "s": state}``. A client must treat it as opaque. A token that is not one,
or one issued for another query (other filters, another collection), is INVALID_ARGUMENT with
reason ``PAGE_TOKEN_INVALID`` on the field ``page_token``, in every service alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from common.canonical import canonical_json
from common.errors import FieldViolation, InvalidArgument, invalid

REASON = "PAGE_TOKEN_INVALID"
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with the token of the next page (empty on the last one)."""

    items: list[T]
    next_page_token: str


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """The size of a page: ``default`` for 0, at most ``maximum``; negative is refused."""
    if requested < 0:
        raise invalid([FieldViolation("page_size", "must not be negative", "INVALID_VALUE")])
    return min(requested or default, maximum)


def _digest(query: Any) -> str:
    return hashlib.sha256(canonical_json(query).encode()).hexdigest()[:16]


def encode(state: Mapping[str, Any], *, query: Any) -> str:
    """A token for the next page of ``query`` (any JSON value that names the request)."""
    raw = canonical_json({"q": _digest(query), "s": dict(state)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, *, query: Any) -> dict[str, Any]:
    """The state a token of ``query`` carries; INVALID_ARGUMENT for anything else."""
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise refuse() from exc
    if not isinstance(body, dict) or not isinstance(body.get("s"), dict):
        raise refuse()
    if body.get("q") != _digest(query):
        raise refuse("was issued for another query (other filters, order or collection)")
    state: dict[str, Any] = body["s"]
    return state


def refuse(description: str = "is not a page token of this service") -> InvalidArgument:
    """The error for a token that is not one of this query's.

    Also for one whose state, once decoded, does not fit the list it is for.
    """
    return InvalidArgument(
        f"page_token {description}",
        reason=REASON,
        violations=[FieldViolation("page_token", description, REASON)],
    )


def cut(found: Sequence[T], size: int, token_after: Callable[[T], str]) -> Page[T]:
    """The first ``size`` of ``found``, and a token only if more were found.

    ``found`` is read with room for one more than a page, which tells whether another page
    follows; ``token_after`` makes the token that goes on after an item.
    """
    if len(found) <= size:
        return Page(list(found), "")
    page = list(found[:size])
    return Page(page, token_after(page[-1]))


def after(token: str, *, query: Any) -> str:
    """Where a page of ``query`` in key order goes on: after this key (``""``: the first page)."""
    if not token:
        return ""
    key = decode(token, query=query).get("after", "")
    if not isinstance(key, str):
        raise refuse()
    return key


def cut_after(found: Sequence[T], size: int, key: Callable[[T], str], *, query: Any) -> Page[T]:
    """:func:`cut` for pages in key order: the token goes on after the last item's key."""
    return cut(found, size, lambda last: encode({"after": key(last)}, query=query))
