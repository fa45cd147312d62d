"""Resource shapes, defaults, keys and overlays."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import pytest

from common.errors import InvalidArgument
from oms.model import (
    ACTION_TYPES,
    COLLECTIONS,
    FIELDS,
    OBJECT_TYPES,
    Overlay,
    canonical_key,
    collection_items,
    normalize,
    prefetch,
    resource_key,
    split_key,
)


def test_normalize_fills_every_default_in_canonical_order() -> None:
    out = normalize(
        OBJECT_TYPES,
        {"api_name": "Employee", "primary_key": "id", "properties": [{"api_name": "id"}]},
    )
    assert list(out) == list(FIELDS[OBJECT_TYPES])
    assert out == {
        "api_name": "Employee",
        "display_name": "Employee",
        "description": "",
        "status": "ACTIVE",
        "primary_key": "id",
        "title_property": "id",
        "properties": [
            {
                "api_name": "id",
                "display_name": "id",
                "description": "",
                "data_type": {"base": "", "array": False},
                "required": False,
                "unique": False,
                "enum_values": [],
                "shared_property": "",
            }
        ],
        "interfaces": [],
    }


def test_normalize_fills_action_parts() -> None:
    out = normalize(
        ACTION_TYPES,
        {
            "api_name": "hire",
            "parameters": [{"api_name": "who", "object_type": "Employee"}],
            "rules": [{"kind": "DELETE_OBJECT"}],
        },
    )
    assert out["permission"] == "action:execute"
    assert out["parameters"][0] == {
        "api_name": "who",
        "display_name": "who",
        "description": "",
        "data_type": None,
        "object_type": "Employee",
        "required": False,
    }
    assert out["rules"][0] == {
        "kind": "DELETE_OBJECT",
        "object_type": "",
        "link_type": "",
        "object_parameter": "",
        "values": {},
    }


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_normalize_is_idempotent_and_leaves_its_input_alone(collection: str) -> None:
    raw = {
        "api_name": "x",
        "properties": [{"api_name": "p", "data_type": {"base": "string"}}],
        "extra": {"kept": [1]},
    }
    before = copy.deepcopy(raw)
    once = normalize(collection, raw)
    assert normalize(collection, once) == once
    assert raw == before
    once["extra"]["kept"].append(2)
    assert raw == before


def test_normalize_keeps_unknown_and_malformed_values_for_the_checks_to_report() -> None:
    out = normalize(OBJECT_TYPES, {"api_name": 3, "properties": "many", "zzz": 1, "aaa": 2})
    assert out["api_name"] == 3 and out["properties"] == "many"
    assert list(out)[-2:] == ["aaa", "zzz"]


def test_normalize_refuses_an_unknown_collection() -> None:
    with pytest.raises(InvalidArgument) as caught:
        normalize("widgets", {})
    assert caught.value.reason == "UNKNOWN_COLLECTION"


def test_keys_round_trip() -> None:
    for collection in COLLECTIONS:
        assert split_key(resource_key(collection, "abc")) == (collection, "abc")


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("objectTypes/Employee", "object-types/Employee"),
        ("linkTypes/worksIn", "link-types/worksIn"),
        ("actionTypes/hire", "action-types/hire"),
        ("sharedProperties/costCentre", "shared-properties/costCentre"),
        ("object-types/Employee", "object-types/Employee"),
        ("interfaces/Named", "interfaces/Named"),
        ("objects/Employee/e1", "objects/Employee/e1"),
        ("objectTypes", "objectTypes"),
    ],
)
def test_keys_of_earlier_releases_read_as_the_current_spelling(given: str, canonical: str) -> None:
    assert canonical_key(given) == canonical


def test_the_legacy_spelling_is_no_collection_of_its_own() -> None:
    with pytest.raises(InvalidArgument):
        split_key("objectTypes/Employee")


@pytest.mark.parametrize(
    "key", ["object-types", "object-types/", "widgets/x", "object-types/a/b", ""]
)
def test_malformed_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        split_key(key)
    assert caught.value.reason == "INVALID_RESOURCE_KEY"


def test_overlay_applies_changes_and_deletions_without_touching_the_base() -> None:
    base = {"object-types/A": {"v": 1}, "object-types/B": {"v": 2}}
    view = Overlay(
        base, {"object-types/B": None, "object-types/C": {"v": 3}, "object-types/A": {"v": 9}}
    )
    assert dict(view) == {"object-types/A": {"v": 9}, "object-types/C": {"v": 3}}
    assert "object-types/B" not in view and "object-types/C" in view and 5 not in view
    assert len(view) == 2
    assert view.get("object-types/B") is None
    assert base == {"object-types/A": {"v": 1}, "object-types/B": {"v": 2}}


class LazySnapshot(dict[str, dict[str, int]]):
    """Stands for the store's snapshots, which load resources on demand."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.prefetched: list[list[str]] = []

    def prefetch(self, keys: Iterable[str]) -> None:
        self.prefetched.append(sorted(keys))


def test_bulk_reads_ask_a_lazy_snapshot_to_prefetch() -> None:
    lazy = LazySnapshot({"object-types/A": {}, "link-types/b": {}, "object-types/C": {}})
    assert [k for k, _ in collection_items(lazy, OBJECT_TYPES)] == [
        "object-types/A",
        "object-types/C",
    ]
    assert lazy.prefetched == [["object-types/A", "object-types/C"]]
    prefetch(Overlay(lazy, {"object-types/A": None}), ["object-types/A", "link-types/b"])
    assert lazy.prefetched[-1] == ["link-types/b"]
    prefetch({}, ["x"])  # plain mappings need nothing
