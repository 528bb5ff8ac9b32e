"""Each service's table of request records (AIP-155), declared and queried once.

A service declares its table with the columns every service keeps::

    class RequestRecord(RequestRecordColumns, Base):
        __tablename__ = "request_records"

and its repository (a :class:`servicekit.uow.Repository`) answers
:class:`servicekit.idempotency.RequestRecords` once it names that model::

    class Repository(servicekit.uow.Repository):
        request_record_model = RequestRecord

The use cases then go through :class:`servicekit.idempotency.IdempotentRequest`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Self

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from servicekit.db import UtcDateTime, utcnow

if TYPE_CHECKING:
    from servicekit.idempotency import IdempotentRequest


class RequestRecordColumns:
    """A create that carried a ``request_id``: who asked (the token's subject), the id, the
    method, the request's fingerprint (servicekit.idempotency; '' for a record kept before
    fingerprints were, which matches no request) and the name of what it created."""

    caller: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    method: Mapped[str] = mapped_column(String(60))
    fingerprint: Mapped[str] = mapped_column(String(64), default="", server_default="")
    resource_name: Mapped[str] = mapped_column(String(300))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @classmethod
    def of(cls, request: IdempotentRequest, resource_name: str, create_time: dt.datetime) -> Self:
        """The record of ``request``, which created ``resource_name`` at ``create_time``."""
        record = cls()
        record.caller = request.caller
        record.request_id = request.request_id
        record.method = request.method
        record.fingerprint = request.fingerprint
        record.resource_name = resource_name
        record.create_time = create_time
        return record
