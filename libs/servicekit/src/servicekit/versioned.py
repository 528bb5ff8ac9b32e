"""The columns of a resource that is changed in place and guarded by an etag (AIP-154).

A service's model mixes them in beside its own columns::

    class Consent(VersionedColumns, Base):
        __tablename__ = "consents"

Every change raises ``version`` by one (the use case does, in the same transaction);
``etag`` is the weak ETag of that version, which an update or delete must send back.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from servicekit.db import UtcDateTime, utcnow


def weak_etag(version: int) -> str:
    return f'W/"{version}"'


def version_of_etag(etag: str) -> int | None:
    """The version a :func:`weak_etag` names (the ``W/`` and the quotes are optional), None
    for anything else."""
    raw = etag.removeprefix("W/").strip('"')
    return int(raw) if raw.isascii() and raw.isdigit() else None


class VersionedColumns:
    version: Mapped[int] = mapped_column(Integer, default=1)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @property
    def etag(self) -> str:
        return weak_etag(self.version)

    def touch(self, now: dt.datetime) -> None:
        """Records a change: the next version, updated ``now``."""
        self.version += 1
        self.update_time = now
