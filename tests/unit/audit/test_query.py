"""Page tokens: opaque, round-trip, bound to the filter and order that issued them."""

import pytest

from audit.events import EventFilter
from audit.query import decode_token, encode_token
from common.errors import InvalidArgument


def test_token_round_trips():
    selection = EventFilter(type="oms.branch.", actor="bob")
    token = encode_token(42, selection, "newest")
    assert "42" not in token
    assert decode_token(token, selection, "newest") == 42


@pytest.mark.parametrize(
    ("selection", "order"),
    [
        (EventFilter(type="oms.branch.", actor="alice"), "newest"),
        (EventFilter(type="oms.branch.", actor="bob"), "oldest"),
    ],
)
def test_token_is_refused_for_another_query(selection, order):
    token = encode_token(42, EventFilter(type="oms.branch.", actor="bob"), "newest")
    with pytest.raises(InvalidArgument) as caught:
        decode_token(token, selection, order)
    assert caught.value.violations[0].field == "page_token"


@pytest.mark.parametrize("token", ["!!", "e30", "eyJzIjotMSwiZiI6IngifQ", "bnVsbA"])
def test_garbage_is_refused(token):
    with pytest.raises(InvalidArgument):
        decode_token(token, EventFilter(), "oldest")
