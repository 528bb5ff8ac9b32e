"""Reads and searches per resource type: which RPC answers them and how its answer maps.

Every function takes the caller's :class:`~servicekit.platform_api.Api`, so each gRPC call carries
the caller's own token and identity decides and logs it as for any other client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from carenet.careplan.v1 import careplan_pb2 as careplan_pb
from carenet.careplan.v1 import careplan_service_pb2 as careplan_rpc
from carenet.identity.v1 import identity_service_pb2 as identity_rpc
from carenet.outcomes.v1 import outcomes_pb2 as outcomes_pb
from carenet.outcomes.v1 import outcomes_service_pb2 as outcomes_rpc
from carenet.referral.v1 import referral_pb2 as referral_pb
from carenet.referral.v1 import referral_service_pb2 as referral_rpc
from fhir_api.errors import invalid, not_found
from fhir_api.resources import careplan, identity, outcomes, referral
from fhir_api.resources.common import Codes, Json, split_inner_id
from fhir_api.search import ID, Search, reference_id, token_codes
from servicekit.platform_api import Api

REQUEST_STATUS = "http://hl7.org/fhir/request-status"
TASK_STATUS = "http://hl7.org/fhir/task-status"


@dataclass
class Page:
    matches: list[Json]
    next_token: str = ""
    included: list[Json] = field(default_factory=list)


@dataclass
class Context:
    """One request: the caller's API, the code systems and the measurement code table."""

    api: Api
    codes: Codes
    code_table_loader: Callable[[Api], dict[str, outcomes_pb.MeasurementCode]]

    @cached_property
    def code_table(self) -> dict[str, outcomes_pb.MeasurementCode]:
        return self.code_table_loader(self.api)


def _id(value: str) -> str:
    if not ID.fullmatch(value):
        raise not_found()
    return value


def _patient(search: Search, required: bool = True) -> str:
    value = search.get("patient")
    if not value:
        if required:
            raise invalid("PATIENT_REQUIRED", "patient: this search needs the patient")
        return ""
    return reference_id(value, "Patient", "patient")


# ------------------------------------------------------------------ reads


def read_patient(ctx: Context, resource_id: str) -> Json:
    reply = ctx.api.identity.GetPatient(
        identity_rpc.GetPatientRequest(name=f"patients/{_id(resource_id)}")
    )
    return identity.patient(reply, ctx.codes)


def read_organization(ctx: Context, resource_id: str) -> Json:
    reply = ctx.api.identity.GetOrganisation(
        identity_rpc.GetOrganisationRequest(name=f"organisations/{_id(resource_id)}")
    )
    return identity.organization(reply, ctx.codes)


def _plan(ctx: Context, patient_id: str) -> careplan_pb.CarePlan:
    plan: careplan_pb.CarePlan = ctx.api.careplan.GetCarePlan(
        careplan_rpc.GetCarePlanRequest(name=f"patients/{_id(patient_id)}/carePlan")
    )
    return plan


def read_care_plan(ctx: Context, resource_id: str) -> Json:
    return careplan.care_plan(_plan(ctx, resource_id), ctx.codes)


def read_goal(ctx: Context, resource_id: str) -> Json:
    patient_id, goal_id = split_inner_id(resource_id)
    plan = _plan(ctx, patient_id)
    for item in plan.goals:
        if item.id == goal_id:
            return careplan.goal(plan, item)
    raise not_found()


def _referral(ctx: Context, resource_id: str) -> referral_pb.Referral:
    patient_id, referral_id = split_inner_id(resource_id)
    found: referral_pb.Referral = ctx.api.referral.GetReferral(
        referral_rpc.GetReferralRequest(
            name=f"patients/{_id(patient_id)}/referrals/{_id(referral_id)}"
        )
    )
    return found


def read_service_request(ctx: Context, resource_id: str) -> Json:
    return referral.service_request(_referral(ctx, resource_id), ctx.codes)


def read_task(ctx: Context, resource_id: str) -> Json:
    return referral.task(_referral(ctx, resource_id), ctx.codes)


def read_healthcare_service(ctx: Context, resource_id: str) -> Json:
    offer = ctx.api.referral.GetOffer(
        referral_rpc.GetOfferRequest(name=f"offers/{_id(resource_id)}")
    )
    return referral.healthcare_service(offer, ctx.codes)


def read_consent(ctx: Context, resource_id: str) -> Json:
    patient_id, consent_id = split_inner_id(resource_id)
    found = ctx.api.identity.GetConsent(
        identity_rpc.GetConsentRequest(
            name=f"patients/{_id(patient_id)}/consents/{_id(consent_id)}"
        )
    )
    return identity.consent(found, ctx.codes)


def read_measure_report(ctx: Context, resource_id: str) -> Json:
    report = ctx.api.outcomes.GetReport(
        outcomes_rpc.GetReportRequest(name=f"reports/{_id(resource_id)}")
    )
    return outcomes.measure_report(report, ctx.codes)


Reader = Callable[[Context, str], Json]

READS: dict[str, Reader] = {
    "Patient": read_patient,
    "Organization": read_organization,
    "CarePlan": read_care_plan,
    "Goal": read_goal,
    "ServiceRequest": read_service_request,
    "Task": read_task,
    "HealthcareService": read_healthcare_service,
    "Consent": read_consent,
    "MeasureReport": read_measure_report,
}

# ------------------------------------------------------------------ searches


def search_care_plans(ctx: Context, search: Search) -> Page:
    wanted = (
        token_codes(search.get("status"), REQUEST_STATUS, "status") if search.get("status") else []
    )
    plan = _plan(ctx, _patient(search))
    resource = careplan.care_plan(plan, ctx.codes)
    if wanted and resource["status"] not in wanted:
        return Page([])
    included = (
        [careplan.goal(plan, g) for g in plan.goals] if "CarePlan:goal" in search.includes else []
    )
    return Page([resource], included=included)


def search_goals(ctx: Context, search: Search) -> Page:
    plan = _plan(ctx, _patient(search))
    return Page([careplan.goal(plan, g) for g in plan.goals])


def _referrals(
    ctx: Context, search: Search, status: int = 0
) -> tuple[list[referral_pb.Referral], str]:
    patient_id = _patient(search, required=False) or "-"
    reply = ctx.api.referral.ListReferrals(
        referral_rpc.ListReferralsRequest(
            parent=f"patients/{patient_id}",
            page_size=search.count,
            page_token=search.page_token,
            status=status,  # type: ignore[arg-type]
        )
    )
    return list(reply.referrals), reply.next_page_token


def search_service_requests(ctx: Context, search: Search) -> Page:
    found, token = _referrals(ctx, search)
    return Page([referral.service_request(r, ctx.codes) for r in found], token)


def search_tasks(ctx: Context, search: Search) -> Page:
    status = 0
    if search.get("status"):
        wanted = token_codes(search.get("status"), TASK_STATUS, "status")
        if len(wanted) > 1:
            # the service filters by one status; several would need a merged paging
            raise invalid("INVALID_STATUS", "status: one code per search")
        status = referral.TASK_STATUS_BY_CODE.get(wanted[0], -1)
        if status < 0:
            raise invalid("INVALID_STATUS", "status: not a Task status carenet uses")
    found, token = _referrals(ctx, search, status)
    included = (
        [referral.service_request(r, ctx.codes) for r in found]
        if "Task:focus" in search.includes
        else []
    )
    return Page([referral.task(r, ctx.codes) for r in found], token, included)


def search_healthcare_services(ctx: Context, search: Search) -> Page:
    owner = search.get("organization")
    owner_id = reference_id(owner, "Organization", "organization") if owner else ""
    reply = ctx.api.referral.ListOffers(
        referral_rpc.ListOffersRequest(
            page_size=search.count,
            page_token=search.page_token,
            state=referral_pb.OFFER_STATE_LISTED,
            owner_organisation=f"organisations/{owner_id}" if owner_id else "",
        )
    )
    return Page(
        [referral.healthcare_service(o, ctx.codes) for o in reply.offers], reply.next_page_token
    )


def search_consents(ctx: Context, search: Search) -> Page:
    reply = ctx.api.identity.ListConsents(
        identity_rpc.ListConsentsRequest(
            parent=f"patients/{_patient(search)}",
            page_size=search.count,
            page_token=search.page_token,
        )
    )
    return Page([identity.consent(c, ctx.codes) for c in reply.consents], reply.next_page_token)


def search_audit_events(ctx: Context, search: Search) -> Page:
    reply = ctx.api.identity.ListAccessLogEntries(
        identity_rpc.ListAccessLogEntriesRequest(
            patient=f"patients/{_patient(search)}",
            page_size=search.count,
            page_token=search.page_token,
        )
    )
    return Page(
        [identity.audit_event(e, ctx.codes) for e in reply.access_log_entries],
        reply.next_page_token,
    )


def search_observations(ctx: Context, search: Search) -> Page:
    reply = ctx.api.outcomes.ListMeasurements(
        outcomes_rpc.ListMeasurementsRequest(
            parent=f"patients/{_patient(search)}",
            page_size=search.count,
            page_token=search.page_token,
        )
    )
    return Page(
        [outcomes.observation(m, ctx.code_table, ctx.codes) for m in reply.measurements],
        reply.next_page_token,
    )


def search_measure_reports(ctx: Context, search: Search) -> Page:
    reply = ctx.api.outcomes.ListReports(
        outcomes_rpc.ListReportsRequest(page_size=search.count, page_token=search.page_token)
    )
    # the list carries no cells: each report is read whole (and authorized) by its id
    reports = [
        ctx.api.outcomes.GetReport(outcomes_rpc.GetReportRequest(name=r.name))
        for r in reply.reports
    ]
    return Page([outcomes.measure_report(r, ctx.codes) for r in reports], reply.next_page_token)


SEARCHES: dict[str, Callable[[Context, Search], Page]] = {
    "CarePlan": search_care_plans,
    "Goal": search_goals,
    "ServiceRequest": search_service_requests,
    "Task": search_tasks,
    "HealthcareService": search_healthcare_services,
    "Consent": search_consents,
    "AuditEvent": search_audit_events,
    "Observation": search_observations,
    "MeasureReport": search_measure_reports,
}


def load_code_table(api: Api) -> dict[str, outcomes_pb.MeasurementCode]:
    reply = api.outcomes.ListMeasurementCodes(outcomes_rpc.ListMeasurementCodesRequest())
    return {c.code: c for c in reply.codes}
