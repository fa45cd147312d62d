"""One page-token scheme for every list of the mesh."""

import pytest

from common import pages
from common.errors import InvalidArgument


def test_a_token_carries_its_state_back_to_the_same_query():
    token = pages.encode({"after": "b", "commit": "c1"}, query={"list": "objectTypes"})
    assert "=" not in token and "+" not in token and "/" not in token  # safe in a URL as it is
    assert pages.decode(token, query={"list": "objectTypes"}) == {"after": "b", "commit": "c1"}


@pytest.mark.parametrize("token", ["%%%", "bm90IGpzb24", "e30", "WzFd"])
def test_what_is_not_a_token_is_refused_on_page_token(token):
    with pytest.raises(InvalidArgument) as caught:
        pages.decode(token, query="q")
    assert caught.value.reason == pages.REASON
    assert [(v.field, v.reason) for v in caught.value.violations] == [("page_token", pages.REASON)]


def test_a_token_of_another_query_is_refused():
    token = pages.encode({"after": 10}, query=[{"type": "oms."}, "oldest"])
    with pytest.raises(InvalidArgument) as caught:
        pages.decode(token, query=[{"type": "oms."}, "newest"])
    assert "another query" in caught.value.violations[0].description


def test_page_sizes():
    assert pages.page_size(0, default=50, maximum=1000) == 50
    assert pages.page_size(5000, default=50, maximum=1000) == 1000
    with pytest.raises(InvalidArgument) as caught:
        pages.page_size(-1, default=50, maximum=1000)
    assert caught.value.violations[0].field == "page_size"


def test_pages_in_key_order_go_on_after_the_last_key() -> None:
    query = {"list": "things"}
    page = pages.cut_after(["a", "b", "c"], 2, lambda item: item, query=query)
    assert page.items == ["a", "b"]
    assert pages.after(page.next_page_token, query=query) == "b"
    assert pages.after("", query=query) == ""
    forged = pages.encode({"after": 7}, query=query)
    with pytest.raises(InvalidArgument):
        pages.after(forged, query=query)
