"""How filters and sort terms compare object values, apart from any store."""

from __future__ import annotations

from decimal import Decimal

from oms.objects import matches, parse_filter, sort_value
from tests.support.ontology import object_type, prop

ITEM = object_type(
    "Item",
    prop("prices", data_type={"base": "decimal", "array": True}),
    prop("price", "decimal"),
)
PROPS = {p["api_name"]: p for p in ITEM["properties"]}


def test_decimals_compare_as_numbers_alone_and_in_arrays() -> None:
    assert sort_value(PROPS["price"], "9.75") < sort_value(PROPS["price"], "10.5")
    assert sort_value(PROPS["prices"], ["10.5", "9.75"]) == [Decimal("10.5"), Decimal("9.75")]
    assert sorted([["10.5"], ["9.75"]], key=lambda v: sort_value(PROPS["prices"], v)) == [
        ["9.75"],
        ["10.5"],
    ]


def test_a_condition_on_a_decimal_array_holds_when_an_element_does() -> None:
    conditions, violations = parse_filter('prices > "10"', ITEM)
    assert violations == []
    assert matches(PROPS, {"id": "a", "prices": ["9.75", "10.5"]}, conditions)
    assert not matches(PROPS, {"id": "b", "prices": ["9.75", "2"]}, conditions)
