"""The canonical JSON every hash of the mesh is taken over: its spelling must never change."""

import math

import pytest

from common.canonical import canonical_json, nested_deeper


def test_keys_are_sorted_at_every_level_and_there_are_no_spaces():
    assert canonical_json({"b": [1, {"d": 2, "c": 3}], "a": True, "e": None}) == (
        '{"a":true,"b":[1,{"c":3,"d":2}],"e":null}'
    )


def test_text_stays_utf8_rather_than_escapes():
    assert canonical_json({"name": "Ünïcødé ✓"}) == '{"name":"Ünïcødé ✓"}'
    assert canonical_json('line\nbreak "quoted"') == '"line\\nbreak \\"quoted\\""'


def test_numbers_are_spelt_as_python_does_and_never_as_nan():
    assert canonical_json([1, 1.0, 1e16, 0.1]) == "[1,1.0,1e+16,0.1]"
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            canonical_json({"x": bad})


def test_equal_values_have_equal_text():
    assert canonical_json({"a": 1, "b": 2}) == canonical_json(dict([("b", 2), ("a", 1)]))


def _nest(depth: int, inner: object = 1) -> object:
    value = inner
    for level in range(depth):
        value = {"a": value} if level % 2 else [value, "{[{["]
    return value


@pytest.mark.parametrize("depth", [0, 1, 2, 5, 24, 25])
def test_nesting_is_counted_in_levels_of_objects_and_lists(depth: int) -> None:
    value = _nest(depth)
    text = canonical_json(value)
    assert nested_deeper(value, text, depth) is False
    if depth:
        assert nested_deeper(value, text, depth - 1) is True


def test_brackets_inside_strings_do_not_make_a_value_deep() -> None:
    value = {"text": "[[[[{{{{" * 10, "list": [[1], {"b": [2]}]}
    assert nested_deeper(value, canonical_json(value), 4) is False
    assert nested_deeper(value, canonical_json(value), 3) is True
