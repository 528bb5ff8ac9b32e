"""Where the next page of referral's lists starts, read from their page tokens.

servicekit.paging authenticates a token (HMAC) before reading it, checks that it was made
for the same request (a fingerprint of the filters) and that its position has exactly the
keys and value types the list expects (the schemas below). On top of that the values are
checked for the range this service could have put there. Anything else is INVALID_ARGUMENT
``INVALID_PAGE_TOKEN`` naming ``page_token``; no position of an unexpected type or range
reaches a query or a slice.
"""

from __future__ import annotations

from servicekit import paging
from servicekit.errors import InvalidArgument

# ListOffers and ListReferrals: the id of the last item returned (ids are 1-63 characters).
AFTER_ID = {"after": str}
MAX_ID_LENGTH = 63
# FindOffers: how many ranked offers were returned before.
OFFSET = {"offset": int}
MAX_OFFSET = 10_000_000


def _invalid() -> InvalidArgument:
    return InvalidArgument.single(
        "page_token", "page token does not match the request", "INVALID_PAGE_TOKEN"
    )


def after_id(page_token: str, fingerprint: str) -> str | None:
    """The id to continue after; None on the first page."""
    position = paging.decode_page_token(page_token, fingerprint, schema=AFTER_ID)
    if position is None:
        return None
    value: str = position["after"]
    if not 0 < len(value) <= MAX_ID_LENGTH:
        raise _invalid()
    return value


def offset(page_token: str, fingerprint: str) -> int:
    """The number of ranked items already returned; 0 on the first page."""
    position = paging.decode_page_token(page_token, fingerprint, schema=OFFSET)
    if position is None:
        return 0
    value: int = position["offset"]
    if not 0 <= value <= MAX_OFFSET:
        raise _invalid()
    return value
