"""Event validation: every violation reported at once, under the caller's field path."""

import pytest

from audit.events import MAX_DATA_BYTES, MAX_DATA_NESTING, parse_event
from common.errors import InvalidArgument

VALID = {
    "id": "e-1",
    "source": "/oms",
    "type": "oms.branch.created",
    "subject": "branches/main",
    "time_ns": 1_700_000_000_123_456_789,
    "actor": "alice",
    "data": {"b": [1, "x", None, True], "a": {"ü": 1.5}},
}


def violations(**changes):
    with pytest.raises(InvalidArgument) as caught:
        parse_event(**{**VALID, **changes})
    return {(v.field, v.reason) for v in caught.value.violations}


def test_valid_event_keeps_everything_and_canonical_data():
    event = parse_event(**VALID)
    assert (event.id, event.source, event.type, event.time_ns) == (
        "e-1",
        "/oms",
        "oms.branch.created",
        VALID["time_ns"],
    )
    assert event.data == '{"a":{"ü":1.5},"b":[1,"x",null,true]}'
    assert event.key == ("/oms", "e-1")


def test_every_violation_is_reported_together():
    assert violations(id="", source="", type="", traceparent="00-bad") == {
        ("event.id", "REQUIRED"),
        ("event.source", "REQUIRED"),
        ("event.type", "REQUIRED"),
        ("event.traceparent", "INVALID_FORMAT"),
    }


def test_time_is_optional():
    assert parse_event(**{**VALID, "time_ns": None}).time_ns is None


@pytest.mark.parametrize(
    "bad_type",
    ["oms.branch", "OMS.branch.created", "oms..created", "oms.branch.created.", "a b.c.d"],
)
def test_type_needs_three_lowercase_segments(bad_type):
    assert violations(type=bad_type) == {("event.type", "INVALID_FORMAT")}


@pytest.mark.parametrize(
    "good_type", ["users.auth.login_succeeded", "oms.schema.created", "a.b.c.d-e"]
)
def test_good_types(good_type):
    assert parse_event(**{**VALID, "type": good_type}).type == good_type


def test_sizes_characters_and_numbers():
    assert violations(
        id="x" * 257,
        source="/o ms",
        subject="line\nbreak",
        actor="a" * 257,
        time_ns=2**63,
        data={"n": float("inf")},
    ) == {
        ("event.id", "TOO_LONG"),
        ("event.source", "INVALID_CHARACTERS"),
        ("event.subject", "INVALID_CHARACTERS"),
        ("event.actor", "TOO_LONG"),
        ("event.time", "OUT_OF_RANGE"),
        ("event.data", "NOT_FINITE"),
    }
    assert violations(data={"blob": "x" * MAX_DATA_BYTES}) == {("event.data", "TOO_LARGE")}


def test_data_nested_past_the_limit_is_refused():
    deep: object = [1]
    for _ in range(MAX_DATA_NESTING - 2):
        deep = {"a": deep}
    assert parse_event(**{**VALID, "data": {"d": deep}}).data  # exactly the limit
    assert violations(data={"d": [deep]}) == {("event.data", "TOO_DEEP")}
    assert parse_event(**{**VALID, "data": {"d": "[{" * 100}}).data  # brackets in a string


def test_field_prefix_names_the_event_in_a_batch():
    with pytest.raises(InvalidArgument) as caught:
        parse_event(**{**VALID, "type": "bad", "field_prefix": "events[4]"})
    assert [v.field for v in caught.value.violations] == ["events[4].type"]
