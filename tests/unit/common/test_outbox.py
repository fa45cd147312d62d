"""An outbox event's data always fits what the Audit Service takes."""

import hashlib
import json

import pytest

from common.canonical import canonical_json, nested_deeper
from common.outbox import MAX_DATA_BYTES, MAX_DATA_NESTING, fitted, printable


def _digest(value: object) -> dict[str, object]:
    encoded = canonical_json(value).encode()
    return {"omitted_bytes": len(encoded), "sha256": hashlib.sha256(encoded).hexdigest()}


def test_data_that_fits_is_its_canonical_json_unchanged() -> None:
    data = {"b": [1, 2], "a": "é" * 100}
    assert fitted(data) == canonical_json(data)


def test_the_largest_values_are_digested_first_and_inside_objects_before_whole() -> None:
    note, big, bigger = "n" * 10_000, "x" * 20_000, "y" * 50_000
    data = {"kind": "load", "parameters": {"big": big, "bigger": bigger, "n": 1}, "note": note}
    kept = json.loads(fitted(data))
    assert len(fitted(data).encode()) <= MAX_DATA_BYTES
    assert kept["kind"] == "load" and kept["note"] == note
    assert kept["parameters"] == {"big": big, "bigger": _digest(bigger), "n": 1}
    both = {"parameters": {"big": "x" * 40_000, "bigger": bigger}, "note": "n" * 40_000}
    assert json.loads(fitted(both))["parameters"] == {
        "big": _digest("x" * 40_000),
        "bigger": _digest(bigger),
    }


def test_bytes_are_counted_not_characters() -> None:
    wide = "€" * 30_000  # 90,000 bytes of UTF-8 in 30,000 characters
    kept = json.loads(fitted({"message": wide, "tag": "v1"}))
    assert kept == {"message": _digest(wide), "tag": "v1"}


def test_data_of_many_small_values_is_digested_whole() -> None:
    data = {str(n): "z" * 100 for n in range(2_000)}
    assert json.loads(fitted(data)) == {"omitted": _digest(data)}


def test_numbers_are_measured_as_the_doubles_the_audit_log_receives() -> None:
    """A whole number reaches the log as a double, whose JSON is two bytes longer."""
    numbers = list(range(10_000, 20_000))  # 60,000 bytes as integers, 80,000 as doubles
    assert len(canonical_json({"n": numbers}).encode()) <= MAX_DATA_BYTES
    kept = json.loads(fitted({"n": numbers, "tag": "v1"}))
    assert kept == {"n": _digest(numbers), "tag": "v1"}


def test_what_nests_too_deep_is_digested_at_the_last_level_it_may_hold() -> None:
    deep: object = "bottom"
    for _ in range(MAX_DATA_NESTING + 5):
        deep = {"a": deep}
    data = {"branch": "main", "parameters": {"p": deep, "flat": [1, 2]}}
    kept = json.loads(fitted(data))
    text = canonical_json(kept)
    assert not nested_deeper(kept, text, MAX_DATA_NESTING)
    assert kept["branch"] == "main" and kept["parameters"]["flat"] == [1, 2]
    level: object = kept["parameters"]["p"]
    for _ in range(MAX_DATA_NESTING - 3):  # data, parameters, p ... down to the last level
        assert isinstance(level, dict)
        level = level["a"]
    assert level == _digest(_below(deep, MAX_DATA_NESTING - 3))
    shallow = {"parameters": {"p": {"a": {"b": [1]}}}}
    assert fitted(shallow) == canonical_json(shallow)


def _below(value: object, levels: int) -> object:
    for _ in range(levels):
        assert isinstance(value, dict)
        value = value["a"]
    return value


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("usernames/alice", 20, "usernames/alice"),
        ("ünïcode ok", 20, "ünïcode ok"),
        ("a\rb\x00c\x7f", 20, "a\ufffdb\ufffdc\ufffd"),
        ("x" * 30, 20, "x" * 19 + "\u2026"),
        ("\n" * 30, 5, "\ufffd" * 4 + "\u2026"),
    ],
)
def test_a_subject_or_actor_is_made_what_the_audit_log_takes(
    text: str, limit: int, expected: str
) -> None:
    made = printable(text, limit)
    assert made == expected
    assert len(made) <= limit and not any(c < " " or c == "\x7f" for c in made)
