"""``request_id`` on creates (AIP-155): a repeat with the same id returns the first result.

Each service keeps its own table of request records (who asked, the id, the method, the name
of what was created); these are the rules every service applies to it.
"""

from __future__ import annotations

from typing import Protocol

from servicekit.errors import InvalidArgument

MAX_LENGTH = 100


class RequestRecord(Protocol):
    method: str
    resource_name: str


def check(request_id: str) -> None:
    """Refuses a request_id that cannot be stored."""
    if len(request_id) > MAX_LENGTH:
        raise InvalidArgument.single(
            "request_id", f"at most {MAX_LENGTH} characters", "REQUEST_ID_TOO_LONG"
        )


def replayed(record: RequestRecord | None, method: str) -> str | None:
    """The name created by the first request with this id, or None for a new request.

    An id already used by the same caller for another method is INVALID_ARGUMENT.
    """
    if record is None:
        return None
    if record.method != method:
        raise InvalidArgument.single(
            "request_id", "was already used for another method", "REQUEST_ID_REUSED"
        )
    return record.resource_name
