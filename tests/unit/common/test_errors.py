"""Error messages people read: every violation listed, values in the API's JSON form."""

from __future__ import annotations

from common.errors import MESSAGE_VIOLATIONS, FieldViolation, invalid, quoted


def test_a_message_lists_every_violation_it_names() -> None:
    violations = [FieldViolation(f"f{i}", "required") for i in range(4)]
    message = str(invalid(violations))
    assert message == "f0: required; f1: required; f2: required; f3: required"
    assert "more" not in message


def test_past_the_limit_a_message_counts_instead_of_cutting_the_list_off() -> None:
    violations = [FieldViolation(f"f{i}", "required") for i in range(MESSAGE_VIOLATIONS + 1)]
    error = invalid(violations)
    assert str(error) == f"{MESSAGE_VIOLATIONS + 1} problems, each a field violation in the details"
    assert len(error.violations) == MESSAGE_VIOLATIONS + 1


def test_values_are_quoted_as_json() -> None:
    assert quoted("userId") == '"userId"'
    assert quoted(["PRINCIPAL"]) == '["PRINCIPAL"]'
    assert quoted(True) == "true"
    assert quoted("café") == '"café"'
