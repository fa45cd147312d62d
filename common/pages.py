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
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from common.canonical import canonical_json
from common.errors import FieldViolation, InvalidArgument, invalid

REASON = "PAGE_TOKEN_INVALID"
PAGE_BYTES = 2 * 1024 * 1024
"""Encoded bytes past which a page takes no further item (:func:`fit`). Large items (objects,
events, comments) would otherwise make a page of a thousand outgrow a gRPC client's default
receive limit (4 MiB) and the gateway's 16 MiB buffer for its JSON."""
T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with the token of the next page (empty on the last one)."""

    items: list[T]
    next_page_token: str
    resume: Callable[[int], str] | None = field(default=None, compare=False, repr=False)
    """The token that goes on after the first ``k`` items, where the list can tell it."""

    def with_items(self, items: list[U]) -> Page[U]:
        """The same page with each item replaced (in order, one for one)."""
        return Page(items, self.next_page_token, self.resume)


class _Encoded(Protocol):
    def ByteSize(self) -> int: ...


class Resumable(Protocol):
    """A page that may know where to go on after any of its items (:class:`Page` does)."""

    @property
    def next_page_token(self) -> str: ...

    @property
    def resume(self) -> Callable[[int], str] | None: ...


E = TypeVar("E", bound=_Encoded)


def fit(page: Resumable, messages: list[E], budget: int = PAGE_BYTES) -> tuple[list[E], str]:
    """The page's messages (one per item) that fit in ``budget`` bytes, and the next token.

    A page always holds its first message, however large; one cut short goes on where it
    stopped. A page that cannot tell where to go on mid-way keeps all its messages.
    """
    count = fitting(messages, budget)
    if count < len(messages) and page.resume is not None:
        return messages[:count], page.resume(count)
    return messages, page.next_page_token


def fitting(messages: Sequence[_Encoded], budget: int = PAGE_BYTES) -> int:
    """How many of the first ``messages`` fit in ``budget`` bytes; at least one, if any."""
    total = 0
    for count, message in enumerate(messages):
        total += message.ByteSize()
        if total > budget and count:
            return count
    return len(messages)


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
    items = list(found[:size])

    def resume(count: int) -> str:
        return token_after(items[count - 1])

    return Page(items, token_after(items[-1]) if len(found) > size else "", resume)


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
