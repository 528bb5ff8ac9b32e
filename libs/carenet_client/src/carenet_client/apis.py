"""The per-service parts of :class:`carenet_client.Carenet`: typed wrappers over the generated
stubs, each call under the client's deadline, retries, token and on-behalf-of header."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.careplan.v1 import careplan_pb2, careplan_service_pb2, careplan_service_pb2_grpc
from carenet.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from carenet.outcomes.v1 import outcomes_pb2, outcomes_service_pb2, outcomes_service_pb2_grpc
from carenet.referral.v1 import referral_pb2, referral_service_pb2, referral_service_pb2_grpc
from carenet_client.channels import RetryPolicy, call_with_retry
from carenet_client.errors import from_rpc_error
from carenet_client.paging import DEFAULT_PAGE_SIZE, pages

if TYPE_CHECKING:
    from carenet_client.client import Carenet

ON_BEHALF_OF_HEADER = "x-carenet-on-behalf-of"
M = TypeVar("M", bound=Message)
R = TypeVar("R")


def patient_name(patient: str) -> str:
    """``p-0001`` or ``patients/p-0001`` -> ``patients/p-0001``."""
    return patient if patient.startswith("patients/") else f"patients/{patient}"


def _message(kind: type[M], value: M | Mapping[str, Any] | None) -> M:
    if value is None:
        return kind()
    if isinstance(value, Message):
        return value
    return json_format.ParseDict(dict(value), kind())


def timestamp(moment: dt.datetime | dt.date | str) -> Timestamp:
    """A Timestamp from a datetime (naive is read as UTC), a date (midnight UTC) or ISO text."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    ts = Timestamp()
    ts.FromDatetime(moment.astimezone(dt.UTC))
    return ts


class _Api:
    def __init__(self, client: Carenet, service: str) -> None:
        self._client = client
        self._channel = client.channel(service)

    def _call(self, method: Callable[..., R], request: Any, *, retry: bool = True) -> R:
        client = self._client
        return call_with_retry(
            lambda remaining: method(request, timeout=remaining, metadata=client.metadata()),
            timeout=client.timeout,
            policy=client.retry if retry else RetryPolicy(max_attempts=1),
            sleep=client.sleep,
        )


class ReferralApi(_Api):
    """The menu card and closed-loop referrals (``carenet.referral.v1.ReferralService``)."""

    def __init__(self, client: Carenet) -> None:
        super().__init__(client, "referral")
        self.stub = referral_service_pb2_grpc.ReferralServiceStub(self._channel)

    def find_offers(
        self,
        profile: referral_pb2.PatientProfile | Mapping[str, Any],
        *,
        categories: Sequence[int] = (),
        fundings: Sequence[int] = (),
        eligible_only: bool = False,
        referrer_role: str = "",
        page_size: int = DEFAULT_PAGE_SIZE,
        limit: int | None = None,
    ) -> Iterator[referral_service_pb2.OfferMatch]:
        """Listed offers for the patient's area, best first. An ineligible match has
        ``eligibility.eligible`` False (absent from JSON, the proto3 default)."""

        def fetch(token: str) -> tuple[Sequence[referral_service_pb2.OfferMatch], str]:
            request = referral_service_pb2.FindOffersRequest(
                profile=_message(referral_pb2.PatientProfile, profile),
                categories=categories,  # type: ignore[arg-type]
                fundings=fundings,  # type: ignore[arg-type]
                eligible_only=eligible_only,
                referrer_role=referrer_role,
                page_size=page_size,
                page_token=token,
            )
            reply = self._call(self.stub.FindOffers, request)
            return reply.matches, reply.next_page_token

        return pages(fetch, limit)

    def get_offer(self, name: str) -> referral_pb2.Offer:
        return self._call(self.stub.GetOffer, referral_service_pb2.GetOfferRequest(name=name))

    def create_referral(
        self,
        patient: str,
        offer: str,
        reason: str,
        *,
        profile: referral_pb2.PatientProfile | Mapping[str, Any] | None = None,
        draft: bool = False,
        request_id: str | None = None,
    ) -> referral_pb2.Referral:
        """Refers the patient to the offer. The ``request_id`` (a new UUID unless given) makes
        the retries of this call, and of the caller's own retries with the same id, safe."""
        request = referral_service_pb2.CreateReferralRequest(
            parent=patient_name(patient),
            referral=referral_pb2.Referral(
                offer=offer if offer.startswith("offers/") else f"offers/{offer}",
                reason=reason,
                profile=_message(referral_pb2.PatientProfile, profile),
                draft=draft,
            ),
            request_id=request_id or str(uuid.uuid4()),
        )
        return self._call(self.stub.CreateReferral, request)

    def get_referral(self, name: str) -> referral_pb2.Referral:
        return self._call(self.stub.GetReferral, referral_service_pb2.GetReferralRequest(name=name))

    def list_referrals(
        self,
        patient: str = "patients/-",
        *,
        status: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
        limit: int | None = None,
    ) -> Iterator[referral_pb2.Referral]:
        """The caller's referrals (as referrer, target or patient); ``patients/-`` for every
        patient the caller may see."""

        def fetch(token: str) -> tuple[Sequence[referral_pb2.Referral], str]:
            request = referral_service_pb2.ListReferralsRequest(
                parent=patient if patient == "patients/-" else patient_name(patient),
                status=status,  # type: ignore[arg-type]
                page_size=page_size,
                page_token=token,
            )
            reply = self._call(self.stub.ListReferrals, request)
            return reply.referrals, reply.next_page_token

        return pages(fetch, limit)

    def transition_referral(
        self,
        name: str,
        status: int,
        *,
        reason: str = "",
        outcome: referral_pb2.ReferralOutcome | Mapping[str, Any] | None = None,
        etag: str = "",
    ) -> referral_pb2.Referral:
        request = referral_service_pb2.TransitionReferralRequest(
            name=name,
            status=status,  # type: ignore[arg-type]
            reason=reason,
            etag=etag,
        )
        if outcome is not None:
            request.outcome.CopyFrom(_message(referral_pb2.ReferralOutcome, outcome))
        return self._call(self.stub.TransitionReferral, request)

    def watch_referral_events(
        self,
        after_cursor: int = 0,
        *,
        patient: str = "",
        follow: bool = True,
        reconnect: bool = True,
    ) -> Iterator[referral_pb2.ReferralEvent]:
        """Every referral change the caller may see after ``after_cursor``; with ``follow``,
        then new ones as they commit, until the caller stops iterating.

        When the stream breaks with UNAVAILABLE (a restart, a lost connection), it is opened
        again after the last cursor delivered, with the channel's backoff, so no event is lost
        or repeated; a stream that stays down for ``max_attempts`` tries raises.
        """
        cursor = after_cursor
        waits = self._client.retry.backoffs()
        failures = 0
        while True:
            request = referral_service_pb2.WatchReferralEventsRequest(
                after_cursor=cursor,
                patient=patient_name(patient) if patient else "",
                no_follow=not follow,
            )
            stream = self.stub.WatchReferralEvents(
                request,
                metadata=self._client.metadata(),
                timeout=None if follow else self._client.timeout,
            )
            try:
                for event in stream:
                    failures = 0
                    cursor = event.cursor
                    yield event
                return
            except grpc.RpcError as raw:
                error = from_rpc_error(raw)
                if not (reconnect and error.retryable) or failures >= len(waits):
                    raise error from None
                self._client.sleep(waits[failures])
                failures += 1
            finally:
                stream.cancel()


@dataclass
class IngestResult:
    """The sum of an import: rows accepted as new, duplicates of stored rows, corrections of
    stored rows, and rejected rows; ``results`` lists every row that was not accepted as new,
    numbered from 0 over the whole import."""

    accepted: int = 0
    duplicates: int = 0
    corrected: int = 0
    rejected: int = 0
    results: list[outcomes_service_pb2.RowResult] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.accepted + self.duplicates + self.corrected + self.rejected


class OutcomesApi(_Api):
    """Enrolments, measurements, reports and contracts (``carenet.outcomes.v1.OutcomesService``)."""

    def __init__(self, client: Carenet) -> None:
        super().__init__(client, "outcomes")
        self.stub = outcomes_service_pb2_grpc.OutcomesServiceStub(self._channel)

    def create_enrolment(
        self, patient: str, enrolment: outcomes_pb2.Enrolment | Mapping[str, Any]
    ) -> outcomes_pb2.Enrolment:
        request = outcomes_service_pb2.CreateEnrolmentRequest(
            parent=patient_name(patient), enrolment=_message(outcomes_pb2.Enrolment, enrolment)
        )
        return self._call(self.stub.CreateEnrolment, request)

    def list_measurement_codes(self) -> list[outcomes_pb2.MeasurementCode]:
        reply = self._call(
            self.stub.ListMeasurementCodes, outcomes_service_pb2.ListMeasurementCodesRequest()
        )
        return list(reply.codes)

    def list_measurements(
        self, patient: str, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[outcomes_pb2.Measurement]:
        def fetch(token: str) -> tuple[Sequence[outcomes_pb2.Measurement], str]:
            request = outcomes_service_pb2.ListMeasurementsRequest(
                parent=patient_name(patient), page_size=page_size, page_token=token
            )
            reply = self._call(self.stub.ListMeasurements, request)
            return reply.measurements, reply.next_page_token

        return pages(fetch)

    def ingest_measurements(
        self,
        rows: Iterable[outcomes_service_pb2.MeasurementRow],
        *,
        batch_size: int = 2000,
        progress: Callable[[int, IngestResult], None] | None = None,
    ) -> IngestResult:
        """Sends the rows in batches of ``batch_size``, one IngestMeasurements call each, so
        that a batch that meets UNAVAILABLE can be sent again (a row already stored comes
        back as a duplicate, never twice). ``progress(rows_sent, totals)`` after each batch."""
        total = IngestResult()
        batch: list[outcomes_service_pb2.MeasurementRow] = []
        sent = 0

        def flush() -> None:
            nonlocal sent
            if not batch:
                return
            chunk = list(batch)
            messages = [
                outcomes_service_pb2.IngestMeasurementsRequest(rows=chunk[i : i + 500])
                for i in range(0, len(chunk), 500)
            ]
            reply = self._call(
                lambda request, **kw: self.stub.IngestMeasurements(iter(request), **kw),
                messages,
            )
            total.accepted += reply.accepted
            total.duplicates += reply.duplicates
            total.corrected += reply.corrected
            total.rejected += reply.rejected
            for result in reply.results:
                numbered = outcomes_service_pb2.RowResult()
                numbered.CopyFrom(result)
                numbered.row = result.row + sent
                total.results.append(numbered)
            sent += len(chunk)
            batch.clear()
            if progress is not None:
                progress(sent, total)

        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                flush()
        flush()
        return total

    def list_contracts(
        self, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[outcomes_pb2.Contract]:
        def fetch(token: str) -> tuple[Sequence[outcomes_pb2.Contract], str]:
            request = outcomes_service_pb2.ListContractsRequest(
                page_size=page_size, page_token=token
            )
            reply = self._call(self.stub.ListContracts, request)
            return reply.contracts, reply.next_page_token

        return pages(fetch)

    def list_reports(
        self, contract: str = "", *, page_size: int = DEFAULT_PAGE_SIZE, limit: int | None = None
    ) -> Iterator[outcomes_pb2.Report]:
        """Reports (without cells), of one contract when given."""

        def fetch(token: str) -> tuple[Sequence[outcomes_pb2.Report], str]:
            request = outcomes_service_pb2.ListReportsRequest(
                contract=_contract(contract) if contract else "",
                page_size=page_size,
                page_token=token,
            )
            reply = self._call(self.stub.ListReports, request)
            return reply.reports, reply.next_page_token

        return pages(fetch, limit)

    def get_report(self, name: str) -> outcomes_pb2.Report:
        return self._call(self.stub.GetReport, outcomes_service_pb2.GetReportRequest(name=name))

    def stream_report(self, name: str) -> Iterator[outcomes_pb2.ReportCell]:
        """The report's cells the caller may see, as they stream in."""
        stream = self.stub.StreamReport(
            outcomes_service_pb2.StreamReportRequest(name=name),
            metadata=self._client.metadata(),
            timeout=self._client.timeout,
        )
        try:
            yield from stream
        except grpc.RpcError as raw:
            raise from_rpc_error(raw) from None

    def evaluate_contract(
        self,
        contract: str,
        period_start: dt.datetime | dt.date | str,
        period_end: dt.datetime | dt.date | str,
        *,
        report: str = "",
    ) -> outcomes_service_pb2.EvaluateContractResponse:
        """What the contract pays for the period; ``report`` pins the report scored against
        (the reply's ``report`` says which one was used either way)."""
        request = outcomes_service_pb2.EvaluateContractRequest(
            contract=_contract(contract),
            period_start=timestamp(period_start),
            period_end=timestamp(period_end),
            report=report,
        )
        return self._call(self.stub.EvaluateContract, request)


def _contract(contract: str) -> str:
    return contract if contract.startswith("contracts/") else f"contracts/{contract}"


class CarePlanApi(_Api):
    """The shared care plan (``carenet.careplan.v1.CarePlanService``)."""

    def __init__(self, client: Carenet) -> None:
        super().__init__(client, "careplan")
        self.stub = careplan_service_pb2_grpc.CarePlanServiceStub(self._channel)

    def get_care_plan(self, patient: str, *, version: int = 0) -> careplan_pb2.CarePlan:
        request = careplan_service_pb2.GetCarePlanRequest(
            name=f"{patient_name(patient)}/carePlan", version=version
        )
        return self._call(self.stub.GetCarePlan, request)

    def list_revisions(
        self, patient: str, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[careplan_pb2.CarePlanRevision]:
        def fetch(token: str) -> tuple[Sequence[careplan_pb2.CarePlanRevision], str]:
            request = careplan_service_pb2.ListCarePlanRevisionsRequest(
                parent=f"{patient_name(patient)}/carePlan", page_size=page_size, page_token=token
            )
            reply = self._call(self.stub.ListCarePlanRevisions, request)
            return reply.care_plan_revisions, reply.next_page_token

        return pages(fetch)

    def update_care_plan(
        self, care_plan: careplan_pb2.CarePlan, paths: Sequence[str]
    ) -> careplan_pb2.CarePlan:
        """Writes the named field groups; ``care_plan.etag`` must be the one last read
        (ABORTED ``ETAG_MISMATCH`` otherwise: read again, reapply, retry)."""
        request = careplan_service_pb2.UpdateCarePlanRequest(care_plan=care_plan)
        request.update_mask.paths.extend(paths)
        return self._call(self.stub.UpdateCarePlan, request)


class IdentityApi(_Api):
    """People behind the user ids other services name (``carenet.identity.v1.IdentityService``)."""

    BATCH = 100  # LookupPeople's limit per call

    def __init__(self, client: Carenet) -> None:
        super().__init__(client, "identity")
        self.stub = identity_service_pb2_grpc.IdentityServiceStub(self._channel)

    def lookup_people(self, users: Iterable[str]) -> dict[str, identity_service_pb2.PersonSummary]:
        """Display name, roles and organisation of each Keycloak user id (a referral's
        ``referrer``, an event's ``actor``, a revision's author) the caller may see; ids that
        are unknown or not visible are left out. Asks in batches of 100."""
        wanted = list(dict.fromkeys(u for u in users if u))
        found: dict[str, identity_service_pb2.PersonSummary] = {}
        for start in range(0, len(wanted), self.BATCH):
            request = identity_service_pb2.LookupPeopleRequest(
                users=wanted[start : start + self.BATCH]
            )
            reply = self._call(self.stub.LookupPeople, request)
            found.update((person.user, person) for person in reply.people)
        return found
