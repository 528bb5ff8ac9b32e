"""Automatic paging: iterate over a List RPC's items across page tokens (AIP-158)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

__all__ = ["DEFAULT_PAGE_SIZE", "pages"]

T = TypeVar("T")

# At most every list's maximum, so the server never has to cap it.
DEFAULT_PAGE_SIZE = 100


def pages(fetch: Callable[[str], tuple[Sequence[T], str]], limit: int | None = None) -> Iterator[T]:
    """Yields the items of ``fetch(page_token)`` page after page until the server returns no
    ``next_page_token`` (or ``limit`` items were yielded). Pages are fetched lazily, so a
    caller that stops early fetches no more."""
    token, given = "", 0
    while True:
        items, token = fetch(token)
        for item in items:
            if limit is not None and given >= limit:
                return
            given += 1
            yield item
        if not token or (limit is not None and given >= limit):
            return
