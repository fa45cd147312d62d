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


class _Sized:
    def __init__(self, size: int) -> None:
        self.size = size

    def ByteSize(self) -> int:
        return self.size


def test_a_page_of_large_items_stops_at_its_byte_budget_and_goes_on_from_there() -> None:
    query = {"list": "things"}
    page = pages.cut_after(["a", "b", "c", "d"], 3, lambda item: item, query=query)
    sizes = [_Sized(400), _Sized(700), _Sized(100)]
    kept, token = pages.fit(page, sizes, budget=1000)
    assert kept == sizes[:1]
    assert pages.after(token, query=query) == "a"
    kept, token = pages.fit(page, sizes, budget=1100)
    assert kept == sizes[:2] and pages.after(token, query=query) == "b"
    kept, token = pages.fit(page, sizes, budget=1200)  # all of it: the page's own token
    assert kept == sizes and token == page.next_page_token
    assert pages.after(token, query=query) == "c"


def test_an_item_larger_than_the_budget_still_makes_a_page() -> None:
    page = pages.cut_after(["a", "b"], 2, lambda item: item, query="q")
    huge = [_Sized(5000), _Sized(1)]
    kept, token = pages.fit(page, huge, budget=1000)
    assert kept == huge[:1] and pages.after(token, query="q") == "a"
    last = pages.cut_after(["z"], 2, lambda item: item, query="q")
    alone = [_Sized(5000)]
    assert pages.fit(last, alone, budget=1000) == (alone, "")


def test_a_page_that_cannot_go_on_mid_way_keeps_every_item() -> None:
    page = pages.Page(["a", "b"], "tok")
    sizes = [_Sized(900), _Sized(900)]
    assert pages.fit(page, sizes, budget=1000) == (sizes, "tok")


def test_a_page_with_new_items_keeps_where_it_goes_on() -> None:
    page = pages.cut_after(["a", "b", "c"], 2, lambda item: item, query="q")
    mapped = page.with_items(["A", "B"])
    assert mapped.items == ["A", "B"] and mapped.next_page_token == page.next_page_token
    assert mapped.resume is not None and pages.after(mapped.resume(1), query="q") == "a"
