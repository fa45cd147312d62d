"""Content addressing of ontology snapshots: canonical JSON, hashes, a two-level tree.

A snapshot is stored git-like: each resource is a blob named by the hash of its canonical JSON;
a root blob maps 256 buckets (chosen by the hash of a resource key) to bucket blobs, and a
bucket blob maps keys to resource hashes. A commit that changes ``n`` resources rewrites at most
``n`` buckets and one root, whatever the size of the ontology or the length of the history, and
two snapshots differ exactly in the buckets whose hashes differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from common.canonical import canonical_json

Tree = dict[str, str]
"""A root (bucket id -> bucket hash) or a bucket (resource key -> resource hash)."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def resource_etag(resource: Any) -> str:
    """A resource's etag: the hash it is stored under, so equal content has equal etags."""
    return content_hash(canonical_json(resource))


def bucket_of(key: str) -> str:
    """The bucket of a resource key: the first byte of its hash, as two hex digits."""
    return hashlib.sha256(key.encode()).hexdigest()[:2]


def group_by_bucket(keys: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key in keys:
        grouped.setdefault(bucket_of(key), []).append(key)
    return grouped


def changed_entries(old: Mapping[str, str], new: Mapping[str, str]) -> set[str]:
    """The names whose hashes differ between two trees, including added and removed ones."""
    return {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}
