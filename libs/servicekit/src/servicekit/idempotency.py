"""``request_id`` on creates (AIP-155): a repeat with the same id returns the first result.

Each service keeps its own table of request records (who asked, the id, the method, a
fingerprint of the request, the name of what was created); these are the rules every
service applies to it:

- a repeat of the same request (same caller, id, method and fingerprint) returns the
  resource the first request created, and writes nothing;
- the same id with another method, or with the same method but a different request (another
  patient, another offer, another body), is refused: INVALID_ARGUMENT, reason
  ``REQUEST_ID_REUSED``, naming the field ``request_id``. It never returns the first result.

The fingerprint is taken by the servicer from the request message with ``request_id``
cleared (:func:`fingerprint_of`), so the service layer only compares two strings. Request
records are kept per caller (the token's subject); a delegate acting for persons makes one
request for one person, so its fingerprint also covers the person (:func:`for_person`): the
same id and body for another person is REQUEST_ID_REUSED, never the first person's result.

The service layer does all of that through :class:`IdempotentRequest` over its repository's
:class:`RequestRecords`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import Message

from servicekit.auth import Principal
from servicekit.errors import InvalidArgument

MAX_LENGTH = 100
FINGERPRINT_LENGTH = 64


class RequestRecord(Protocol):
    method: str
    resource_name: str
    fingerprint: str


def check(request_id: str) -> None:
    """Refuses a request_id that cannot be stored."""
    if len(request_id) > MAX_LENGTH:
        raise InvalidArgument.single(
            "request_id", f"at most {MAX_LENGTH} characters", "REQUEST_ID_TOO_LONG"
        )


def fingerprint_of(request: Message, field: str = "request_id") -> str:
    """A SHA-256 over the request's deterministic serialisation, without its request_id."""
    copy = type(request)()
    copy.CopyFrom(request)
    if field in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField(field)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def for_person(fingerprint: str, on_behalf_of: str) -> str:
    """``fingerprint`` of a request made for the person ``on_behalf_of`` names (unchanged
    for a caller acting for itself)."""
    if not on_behalf_of:
        return fingerprint
    return hashlib.sha256(f"{fingerprint}\n{on_behalf_of}".encode()).hexdigest()


def replayed(record: RequestRecord | None, method: str, fingerprint: str) -> str | None:
    """The name created by the first request with this id, or None for a new request.

    An id already used by the same caller for another method, or for the same method with
    another request, is INVALID_ARGUMENT ``REQUEST_ID_REUSED``.
    """
    if record is None:
        return None
    if record.method != method:
        raise InvalidArgument.single(
            "request_id", "was already used for another method", "REQUEST_ID_REUSED"
        )
    if record.fingerprint != fingerprint:
        raise InvalidArgument.single(
            "request_id", "was already used for a different request", "REQUEST_ID_REUSED"
        )
    return record.resource_name


class RequestRecords(Protocol):
    """What a service's repository offers for request records (its own table)."""

    def request_record(self, caller: str, request_id: str) -> RequestRecord | None: ...

    def add_request_record(
        self, caller: str, request_id: str, method: str, fingerprint: str, resource_name: str
    ) -> None: ...


@dataclass(frozen=True)
class IdempotentRequest:
    """One create with its ``request_id``, as the service layer handles it:

    ``req = IdempotentRequest.of(principal, request_id, "CreateThing", fingerprint)`` checks
    the id and makes the fingerprint cover the person a delegate acts for; inside the unit of
    work, ``name = req.replayed(uow.repo)`` is the name the first request created (None: a
    new request, or no request_id), raising REQUEST_ID_REUSED for a reuse; after creating,
    ``req.remember(uow.repo, name)`` records it in the same transaction. Without a
    request_id both do nothing. ``stored`` turns the fingerprint into its stored form (e.g.
    an HMAC where the request carries a secret such as a BSN).
    """

    caller: str
    request_id: str
    method: str
    fingerprint: str

    @classmethod
    def of(
        cls,
        principal: Principal,
        request_id: str,
        method: str,
        fingerprint: str,
        *,
        stored: Callable[[str], str] | None = None,
    ) -> IdempotentRequest:
        check(request_id)
        fp = for_person(fingerprint, principal.on_behalf_of)
        return cls(principal.subject, request_id, method, stored(fp) if stored else fp)

    @classmethod
    def from_message(
        cls,
        principal: Principal,
        request: Message,
        method: str,
        *,
        stored: Callable[[str], str] | None = None,
    ) -> IdempotentRequest:
        """The servicer's way: the request message's ``request_id`` and its
        :func:`fingerprint_of`, for ``method``; the use case takes the result as it is."""
        request_id = str(getattr(request, "request_id", ""))
        return cls.of(principal, request_id, method, fingerprint_of(request), stored=stored)

    def replayed(self, records: RequestRecords) -> str | None:
        if not self.request_id:
            return None
        return replayed(
            records.request_record(self.caller, self.request_id), self.method, self.fingerprint
        )

    def remember(self, records: RequestRecords, resource_name: str) -> None:
        if self.request_id:
            records.add_request_record(
                self.caller, self.request_id, self.method, self.fingerprint, resource_name
            )
