"""Fakes for unit tests: an identity client that answers from a table and records every
call, and a unit of work over a private in-memory SQLite database (the real repository,
no server, created in milliseconds)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import create_engine, event
from sqlalchemy.pool import StaticPool

from referral.clients import Action, Decision, ReferralContext
from referral.deps import Deps
from referral.models import Base
from referral.unit_of_work import UnitOfWork
from servicekit.auth import Principal
from servicekit.db import make_session_factory

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class AuthorizeCall:
    subject: str
    organisation: str
    patient_id: str
    action: Action
    referral: ReferralContext | None
    record_holder_id: str = ""


@dataclass
class FakeIdentityClient:
    """Permits everything unless told otherwise. Patients in ``unknown`` are refused as
    identity refuses a patient it does not know: like one without a care relationship."""

    deny: dict[str, str] = field(default_factory=dict)  # subject -> reason
    unknown: set[str] = field(default_factory=set)
    unavailable: bool = False
    calls: list[AuthorizeCall] = field(default_factory=list)

    def authorize(
        self,
        subject: Principal,
        patient_id: str,
        action: Action,
        *,
        referral: ReferralContext | None = None,
        purpose: str = "",
        record_holder_id: str = "",
    ) -> Decision:
        self.calls.append(
            AuthorizeCall(
                subject.subject,
                subject.organisation,
                patient_id,
                action,
                referral,
                record_holder_id,
            )
        )
        if self.unavailable:
            from referral.errors import IdentityUnavailable

            raise IdentityUnavailable("identity did not answer")
        if patient_id in self.unknown:
            return Decision(False, "NO_CARE_RELATIONSHIP")
        if subject.subject in self.deny:
            return Decision(False, self.deny[subject.subject])
        return Decision(True, "CARE_RELATIONSHIP", "BASIS_CARE_RELATIONSHIP")


def memory_sessions() -> Callable[[], UnitOfWork]:
    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )

    @event.listens_for(engine, "connect")
    def _fk(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO outbox_head (id, last_id) VALUES (1, 0)")
    sessions = make_session_factory(engine)
    return lambda: UnitOfWork(sessions)


class FakeUnitOfWork(UnitOfWork):
    """Marker for readers: unit tests build their units of work with :func:`fake_deps`."""


@dataclass
class Clock:
    now: dt.datetime = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def fake_deps(identity: FakeIdentityClient | None = None, clock: Clock | None = None) -> Deps:
    return Deps(
        uow=memory_sessions(),
        identity=identity or FakeIdentityClient(),
        clock=clock or Clock(),
        sleep=lambda _s: None,
    )


def principal(
    user: str,
    org: str = "",
    roles: tuple[str, ...] = (),
    *,
    tenant: str = "cg-zuidoost",
    patient: str = "",
) -> Principal:
    return Principal(
        subject=user,
        client_id="carenet-kis",
        organisation=f"organisations/{org}" if org else "",
        care_group=f"organisations/{tenant}",
        roles=frozenset(roles),
        patient=f"patients/{patient}" if patient else "",
    )


GP = principal("dr.jansen", "gp-de-linde", ("gp",))
NURSE = principal("poh.bakker", "gp-de-linde", ("practice-nurse",))
OTHER_GP = principal("dr.devries", "gp-het-anker", ("gp",))
SPECIALIST = principal("dr.smit", "hosp-catharina", ("specialist",))
PROVIDER = principal("coach.degroot", "gli-beweegfit", ("provider",))
COACH = principal("coach.visser", "gm-eindhoven", ("sport-coach",))
OFFICER = principal("ambtenaar.mulder", "gm-eindhoven", ("municipality-officer",))
INSURER = principal("analist.peters", "ins-vgz", ("insurer-analyst",))
ADMIN = principal("admin.zuidoost", "cg-zuidoost", ("care-group-admin",))
PATIENT = principal("pat.dewit", "", ("patient",), patient="p-0001")
OTHER_PATIENT = principal("pat.yilmaz", "", ("patient",), patient="p-0002")
NOORD_GP = principal("dr.noord", "gp-noord", ("gp",), tenant="cg-noord")
CAREPLAN = Principal(
    subject="svc-careplan",
    client_id="svc-careplan",
    organisation="",
    care_group="",
    roles=frozenset({"service"}),
)
