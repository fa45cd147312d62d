"""Every permission of the mesh says what it allows, as ListPermissions publishes it."""

from common.permissions import DESCRIPTIONS, Permission


def test_every_permission_has_a_one_line_description() -> None:
    assert set(DESCRIPTIONS) == set(Permission)
    assert all(text and "\n" not in text for text in DESCRIPTIONS.values())
