"""servicekit.paging's one way to page: the servicer reads size and token into a
PageRequest (AIP-158 sizes: 0 the default, above the maximum capped), the use case answers a
Page with the next position, the servicer turns it into the next token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from servicekit import paging
from servicekit.errors import InvalidArgument
from servicekit.paging import OFFSET, Page, PageRequest, Paging, PositionKind


@dataclass
class ListRequest:
    page_size: int = 0
    page_token: str = ""


def test_sizes_are_defaulted_and_capped_not_refused() -> None:
    assert paging.capped_page_size(0) == paging.DEFAULT_PAGE_SIZE
    assert paging.capped_page_size(7) == 7
    assert paging.capped_page_size(paging.MAX_PAGE_SIZE + 1) == paging.MAX_PAGE_SIZE
    assert paging.capped_page_size(10**9, maximum=100) == 100
    assert paging.capped_page_size(0, default=20, maximum=100) == 20
    with pytest.raises(InvalidArgument) as caught:
        paging.capped_page_size(-1)
    assert caught.value.reason == "INVALID_PAGE_SIZE"
    assert Paging(ListRequest(page_size=100_000), "x").page == PageRequest(paging.MAX_PAGE_SIZE)


def _list(items: list[str], request: PageRequest) -> Page[str]:
    """A use case over a repository ordered by key: fetch ``limit`` after the position."""
    after = request.after("")
    fetched = [i for i in sorted(items) if i > after][: request.limit]
    return Page.after_key(fetched, request, key=lambda i: i)


def test_walking_a_list_by_key_returns_every_item_once() -> None:
    items = [f"id-{n:03}" for n in range(23)]
    seen: list[str] = []
    token = ""
    for _ in range(10):
        p = Paging(ListRequest(page_size=5, page_token=token), "things", "filter")
        page = _list(items, p.page)
        seen += page.items
        token = p.token(page)
        if not token:
            break
    assert seen == items
    exact = Paging(ListRequest(page_size=23), "things")
    assert exact.token(_list(items, exact.page)) == ""


RANKED = PositionKind(OFFSET)


def test_a_ranked_list_pages_by_offset() -> None:
    ranked = list(range(12))
    p = Paging(ListRequest(page_size=5), "find", position=RANKED)
    first = Page.slice(ranked, p.page)
    assert (list(first.items), first.next) == ([0, 1, 2, 3, 4], {"offset": 5})
    p2 = Paging(ListRequest(page_size=5, page_token=p.token(first)), "find", position=RANKED)
    assert p2.page.offset == 5
    last = Page.slice(
        ranked,
        Paging(
            ListRequest(10, p2.token(Page.slice(ranked, p2.page))),
            "find",
            position=RANKED,
        ).page,
    )
    assert (list(last.items), last.next) == ([10, 11], None)


def test_a_token_is_only_good_for_its_own_filters_and_schema() -> None:
    p = Paging(ListRequest(page_size=1), "things", "a")
    token = p.token(Page(["x"], {"after": "x"}))
    assert Paging(ListRequest(1, token), "things", "a").page.position == {"after": "x"}
    builds: list[Callable[[], Paging]] = [
        lambda: Paging(ListRequest(1, token), "things", "b"),
        lambda: Paging(ListRequest(1, token), "things", "a", position=PositionKind({"after": int})),
        lambda: Paging(ListRequest(1, token + "x"), "things", "a"),
    ]
    for build in builds:
        with pytest.raises(InvalidArgument) as caught:
            build()
        assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_a_page_of_several_keys() -> None:
    reports = PositionKind({"t": str, "id": int})
    request = PageRequest(2, None)
    page = Page.of([("a", 1), ("a", 2), ("b", 3)], request, lambda r: {"t": r[0], "id": r[1]})
    assert page == Page([("a", 1), ("a", 2)], {"t": "a", "id": 2})
    p = Paging(ListRequest(2), "reports", position=reports)
    again = Paging(ListRequest(2, p.token(page)), "reports", position=reports)
    assert again.page == PageRequest(2, {"t": "a", "id": 2})
    assert Page.of([], request, lambda r: {}).next is None


def test_a_position_out_of_the_lists_range_is_refused() -> None:
    def valid(position: dict[str, object]) -> bool:
        return isinstance(position["offset"], int) and 0 <= position["offset"] <= 100

    token = Paging(ListRequest(5), "find", position=RANKED).token(Page([], {"offset": 10_000}))
    with pytest.raises(InvalidArgument) as caught:
        Paging(ListRequest(5, token), "find", position=PositionKind(OFFSET, valid))
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    ok = Paging(ListRequest(5), "find", position=RANKED).token(Page([], {"offset": 10}))
    assert (
        Paging(ListRequest(5, ok), "find", position=PositionKind(OFFSET, valid)).page.offset == 10
    )
