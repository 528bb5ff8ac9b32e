"""servicekit.request_records and the repository's request records, on PostgreSQL: a create
with a request_id is replayed, a reuse refused, within the service's own transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import DeclarativeBase

from servicekit.auth import Principal
from servicekit.db import make_engine, make_session_factory, new_metadata
from servicekit.errors import InvalidArgument
from servicekit.idempotency import IdempotentRequest
from servicekit.request_records import RequestRecordColumns
from servicekit.uow import Repository, SqlAlchemyUnitOfWork
from testkit.database import fresh_database


class Base(DeclarativeBase):
    metadata = new_metadata()


class RequestRecord(RequestRecordColumns, Base):
    __tablename__ = "request_records"


class ThingRepository(Repository):
    request_record_model = RequestRecord


class UnitOfWork(SqlAlchemyUnitOfWork):
    def _start(self) -> None:
        self.repo = ThingRepository(self)


GP = Principal("dr-jansen", "kis", "organisations/gp", "organisations/cg", frozenset({"gp"}))


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with fresh_database("request_records") as url:
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()


def test_a_create_is_remembered_in_its_transaction_and_replayed(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    first = IdempotentRequest.of(GP, "r-1", "CreateThing", "fp-1")
    with UnitOfWork(sessions) as uow:
        assert first.replayed(uow.repo) is None
        first.remember(uow.repo, "things/1")
        uow.rollback()  # the create failed: nothing is remembered
    with UnitOfWork(sessions) as uow:
        assert first.replayed(uow.repo) is None
        first.remember(uow.repo, "things/1")
        uow.commit()
    with UnitOfWork(sessions) as uow:
        assert IdempotentRequest.of(GP, "r-1", "CreateThing", "fp-1").replayed(uow.repo) == (
            "things/1"
        )
        with pytest.raises(InvalidArgument) as caught:
            IdempotentRequest.of(GP, "r-1", "CreateThing", "fp-2").replayed(uow.repo)
        assert caught.value.reason == "REQUEST_ID_REUSED"


def test_a_repository_without_a_model_says_so(engine: Engine) -> None:
    class Plain(Repository):
        pass

    with (
        UnitOfWork(make_session_factory(engine)) as uow,
        pytest.raises(TypeError, match="request_record_model"),
    ):
        Plain(uow).request_record("a", "b")
