"""How a row is played: which patient its columns name, which request its RPC gets, and
what came back (the outcome, and for some RPCs how much the caller saw).

Outcomes are written as in the table:

- ``OK``: the call succeeded;
- ``<CODE> <REASON>``: the gRPC code and the reason of the status's one ErrorInfo;
- ``PERMIT <REASON>`` / ``DENY <REASON>``: Authorize's and BatchAuthorize's decision;
- ``REJECTED <REASON>``: a per-item refusal inside an OK answer (BatchCreateEnrolments,
  IngestMeasurements).

Every write a row makes either fails after authorization on purpose (a stale etag, an
impossible status change, an existing resource), or counts for nothing in other rows, or
happens on a patient of its own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
from google.protobuf import field_mask_pb2, timestamp_pb2

from carenet.careplan.v1 import careplan_pb2 as cp
from carenet.careplan.v1 import careplan_service_pb2 as cp_rpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.outcomes.v1 import outcomes_service_pb2 as oc_rpc
from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from testkit.rpc import failure

from .facts import (
    OFFER_TARGETS,
    OFFERS,
    PROFILE,
    REFER_COPY,
    TIMEOUT,
    Facts,
    PatientRecords,
    enrolment_request,
    measurement_row,
)
from .personas import FOREIGN, PERSONAS, PRACTICE, Persona
from .table import Row

ABSENT = "nx-no-such-patient"
STALE_CARE_PLAN_ETAG = 'W/"999"'
STALE_ETAG = "stale-etag"
EMERGENCY_REASON = (
    "unconscious-patient: patient unconscious at the emergency department, no history"
)
VAGUE_EMERGENCY_REASON = "urgent"


@dataclass(frozen=True)
class Result:
    outcome: str
    sees: str = ""
    # (code, message, reason, domain) of a failure, to compare answers exactly
    status: tuple[str, str, str, str] | None = None


def _call(call: Callable[[], Any]) -> tuple[Any, Result]:
    """The reply (None on a failure) and the outcome."""
    try:
        reply = call()
    except grpc.RpcError as error:
        try:
            f = failure(error)
        except AssertionError:
            code = error.code().name
            return None, Result(f"{code} NO_STATUS", status=(code, "", "", ""))
        return None, Result(
            f"{f.code.name} {f.reason}".strip(),
            status=(f.code.name, f.message, f.reason, f.domain),
        )
    return reply, Result("OK")


def _attempt(call: Callable[[], Any], sees: Callable[[Any], str] | None = None) -> Result:
    reply, result = _call(call)
    if reply is None or sees is None:
        return result
    return Result("OK", sees(reply))


class Player:
    """Plays rows against the running platform."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts

    # ------------------------------------------------------------------ callers

    def persona(self, row: Row) -> Persona:
        return PERSONAS[row.caller]

    def metadata(self, row: Row) -> Any:
        """The caller's real token; for the KIS, the person it acts for. The cases
        ``on-behalf:other-person`` (the KIS names a person of another organisation) and
        ``on-behalf:from-person`` (a person's own token carries the header) misuse it."""
        callers = self.facts.callers
        persona = self.persona(row)
        if row.case == "on-behalf:other-person":
            return callers.metadata(persona, acts_for="dr.devries")
        if row.case == "on-behalf:from-person":
            token = callers.token(persona)
            return (
                ("authorization", f"Bearer {token}"),
                ("x-carenet-on-behalf-of", callers.sub("dr.devries")),
            )
        return callers.metadata(persona)

    # ------------------------------------------------------------------ the patient

    def patient(self, row: Row) -> PatientRecords:
        """The patient the row's columns name (see the table's documentation)."""
        facts = self.facts
        persona = self.persona(row)
        if row.patient == "nonexistent":
            return PatientRecords(ABSENT, facts.bsns.take())
        if row.tenant == "other":
            key = "az-active-given" if persona.care_group == FOREIGN else "p-noord-1"
            return facts.patients[key]
        if row.patient == "self":
            return facts.patients[persona.patient]
        if row.case == "two-holders":
            return facts.patients["az-two-holders"]
        if persona.is_patient or row.relationship == "-":
            return facts.patients["az-active-given"]
        if persona.holder:
            return facts.patients[
                "az-holder-ended" if row.relationship == "ended" else "az-none-none"
            ]
        consent = row.consent if row.consent != "-" else "none"
        if consent == "other":
            consent = "other-c" if row.category == "measurements" else "other-m"
        return facts.patients[f"az-{row.relationship}-{consent}"]

    def referral_label(self, row: Row) -> str:
        """Which of the patient's two referrals a referral row is about: ``to-caller`` the
        one addressed to the caller's organisation, ``to-other`` one that is not; the
        referrer's people and the patient use the GLI referral."""
        organisation = self.persona(row).organisation
        if row.case == "to-caller":
            return next(label for label, org in OFFER_TARGETS.items() if org == organisation)
        if row.case == "to-other":
            return next(label for label, org in OFFER_TARGETS.items() if org != organisation)
        return "gli"

    def referral_name(self, row: Row, patient: PatientRecords) -> str:
        if not patient.referrals:  # no such patient, or one of another care group
            return f"{patient.name}/referrals/nx"
        return patient.referrals[self.referral_label(row)]

    # ------------------------------------------------------------------ playing

    def play(self, row: Row) -> Result:
        method = re.sub(r"(?<!^)(?=[A-Z])", "_", row.method).lower()
        handler = getattr(self, f"_{row.service}_{method}")
        result: Result = handler(row)
        return result

    # ---------------------------------------------------------------- identity

    def _identity_get_patient(self, row: Row) -> Result:
        p = self.patient(row)

        def sees(reply: id_pb.Patient) -> str:
            return "full" if reply.HasField("create_time") else "name-only"

        return _attempt(
            lambda: self.facts.identity.GetPatient(
                id_rpc.GetPatientRequest(name=p.name), metadata=self.metadata(row), timeout=TIMEOUT
            ),
            sees,
        )

    def _identity_lookup_patient(self, row: Row) -> Result:
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.identity.LookupPatient(
                id_rpc.LookupPatientRequest(bsn=p.bsn, purpose="care"),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _identity_register_patient(self, row: Row) -> Result:
        """``nonexistent``: a BSN nobody registered; otherwise the BSN of a patient of its
        own that the practice registered (registering adds the caller's relationship).
        ``chosen-id``: a new BSN with a patient id of the caller's choosing, the id of that
        existing patient (``other``) or a free one (``nonexistent``)."""
        patient_id = ""
        if row.case == "chosen-id":
            bsn = self.facts.bsns.take()
            if row.patient == "nonexistent":
                patient_id = f"az-free-{uuid.uuid4().hex[:12]}"
            else:
                patient_id = self.facts.scratch_patient().id
        elif row.patient == "nonexistent" or row.tenant == "other":
            bsn = self.facts.bsns.take()
        else:
            bsn = self.facts.scratch_patient().bsn
        return _attempt(
            lambda: self.facts.identity.RegisterPatient(
                id_rpc.RegisterPatientRequest(bsn=bsn, patient_id=patient_id),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _scratch_for(self, row: Row, extra: Iterable[tuple[str, str]] = ()) -> PatientRecords:
        """A patient of the row's own, where the caller's organisation has the row's
        relationship (the practice always has its coordinating one)."""
        persona = self.persona(row)
        relations = list(extra)
        if (
            not persona.holder
            and persona.organisation
            and row.relationship in ("active", "ended")
            and persona.care_group != FOREIGN
        ):
            relations.append((persona.organisation, row.relationship))
        return self.facts.scratch_patient(relations)

    def _identity_create_care_relationship(self, row: Row) -> Result:
        """A relationship (treating, open) for the caller's own organisation
        (``for-own``), the lifestyle provider (``for-provider``) or the hospital (any other
        case), on a patient of the row's own."""
        persona = self.persona(row)
        organisation = {
            "for-own": persona.organisation,
            "for-provider": "gli-beweegfit",
        }.get(row.case, "hosp-catharina")
        if row.patient == "nonexistent":
            parent = f"patients/{ABSENT}"
        elif row.tenant == "other":
            parent = self.patient(row).name
        else:
            parent = self._scratch_for(row).name
        return _attempt(
            lambda: self.facts.identity.CreateCareRelationship(
                id_rpc.CreateCareRelationshipRequest(
                    parent=parent,
                    care_relationship=id_pb.CareRelationship(
                        organisation=f"organisations/{organisation}",
                        kind=id_pb.CARE_RELATIONSHIP_KIND_TREATING,
                    ),
                ),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _identity_end_care_relationship(self, row: Row) -> Result:
        """Ends the caller's own (``of-own``) or the hospital's (any other case) active
        relationship with a patient of the row's own; ``missing``: a relationship that
        patient does not have."""
        persona = self.persona(row)
        if row.patient == "nonexistent":
            name = f"patients/{ABSENT}/careRelationships/nx"
        elif row.case == "missing":
            name = f"{self._scratch_for(row).name}/careRelationships/nx"
        else:
            owner = persona.organisation if row.case == "of-own" else "hosp-catharina"
            extra = [] if persona.organisation == owner else [(owner, "active")]
            if persona.organisation == owner and row.relationship != "active":
                raise AssertionError(f"{row.id}: of-own needs an active relationship")
            scratch = self._scratch_for(row, extra)
            name = scratch.relationships[owner]
        return _attempt(
            lambda: self.facts.identity.EndCareRelationship(
                id_rpc.EndCareRelationshipRequest(name=name),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _identity_list_care_relationships(self, row: Row) -> Result:
        p = self.patient(row)
        own = self.persona(row).organisation

        def sees(reply: id_rpc.ListCareRelationshipsResponse) -> str:
            listed = {
                r.organisation.removeprefix("organisations/") for r in reply.care_relationships
            }
            everyone = self._related_organisations(p)
            if listed == everyone:
                return "all"
            labels = []
            if own in listed:
                labels.append("own")
            if PRACTICE in listed and own != PRACTICE:
                labels.append("coordinating")
            if listed - {own, PRACTICE}:
                labels.append("others")
            return "+".join(labels) or "none"

        return _attempt(
            lambda: self.facts.identity.ListCareRelationships(
                id_rpc.ListCareRelationshipsRequest(parent=p.name, page_size=100),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            ),
            sees,
        )

    def _related_organisations(self, p: PatientRecords) -> set[str]:
        reply = self.facts.identity.ListCareRelationships(
            id_rpc.ListCareRelationshipsRequest(parent=p.name, page_size=100),
            metadata=self.facts.md("gp"),
            timeout=TIMEOUT,
        )
        return {r.organisation.removeprefix("organisations/") for r in reply.care_relationships}

    def _consent_name(self, row: Row) -> str:
        p = self.patient(row)
        return p.spare_consent or f"{p.name}/consents/nx"

    def _identity_create_consent(self, row: Row) -> Result:
        """A consent that counts for nothing (measurements to insurers)."""
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.identity.CreateConsent(
                id_rpc.CreateConsentRequest(
                    parent=p.name,
                    consent=id_pb.Consent(
                        record_holder=id_pb.OrganisationSelector(
                            category=id_pb.ORGANISATION_TYPE_GP_PRACTICE
                        ),
                        data_category=id_pb.DATA_CATEGORY_MEASUREMENTS,
                        requester=id_pb.OrganisationSelector(
                            category=id_pb.ORGANISATION_TYPE_INSURER
                        ),
                    ),
                ),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _identity_get_consent(self, row: Row) -> Result:
        name = self._consent_name(row)
        return _attempt(
            lambda: self.facts.identity.GetConsent(
                id_rpc.GetConsentRequest(name=name), metadata=self.metadata(row), timeout=TIMEOUT
            )
        )

    def _identity_list_consents(self, row: Row) -> Result:
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.identity.ListConsents(
                id_rpc.ListConsentsRequest(parent=p.name),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _identity_list_consent_events(self, row: Row) -> Result:
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.identity.ListConsentEvents(
                id_rpc.ListConsentEventsRequest(parent=p.name),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _identity_withdraw_consent(self, row: Row) -> Result:
        """With a stale etag: a permitted caller gets ABORTED ETAG_MISMATCH and nothing
        is withdrawn."""
        name = self._consent_name(row)
        return _attempt(
            lambda: self.facts.identity.WithdrawConsent(
                id_rpc.WithdrawConsentRequest(name=name, etag=STALE_ETAG),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _identity_list_access_log_entries(self, row: Row) -> Result:
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.identity.ListAccessLogEntries(
                id_rpc.ListAccessLogEntriesRequest(patient=p.name, page_size=1),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _subject(self, username: str) -> id_pb.Subject:
        """The end user a service asks for, as the service puts it in ``subject``: the
        claims of that user's own token."""
        token = self.facts.callers.tokens.user(username)
        claims = jwt.decode(token, options={"verify_signature": False})
        return id_pb.Subject(
            user=str(claims["sub"]),
            organisation=f"organisations/{claims.get('carenet_org', '')}",
            care_group=f"organisations/{claims.get('carenet_tenant', '')}",
            roles=sorted(claims.get("realm_access", {}).get("roles", [])),
            client_id=str(claims.get("azp", "")),
        )

    def _authorize_request(self, row: Row, patient: str) -> id_rpc.AuthorizeRequest:
        """Authorize's question for a row's case:

        - ``-``: may the caller read the care plan the practice holds;
        - ``emergency`` / ``vague-emergency``: the same, with an emergency reason that is a
          real reason / that is not;
        - ``measurements-no-holder``: may the caller read measurements, naming no holder;
        - ``end-user-context``: the caller (an end user) claims a referral context naming
          its own organisation as the target of the patient's GLI referral;
        - ``end-user-subject``: the caller (an end user) names another subject;
        - ``for-provider+context``: a service asks for the lifestyle provider, with the
          context of the patient's GLI referral (addressed to it);
        - ``for-provider``: a service asks for the lifestyle provider about referral data,
          without a context.
        """
        request = id_rpc.AuthorizeRequest(
            patient=patient,
            data_category=id_pb.DATA_CATEGORY_CARE_PLAN,
            action=id_pb.ACTION_READ,
            record_holder=f"organisations/{PRACTICE}",
            purpose="care",
        )
        case = row.case
        if case == "emergency":
            request.emergency_reason = EMERGENCY_REASON
        elif case == "vague-emergency":
            request.emergency_reason = VAGUE_EMERGENCY_REASON
        elif case == "measurements-no-holder":
            request.data_category = id_pb.DATA_CATEGORY_MEASUREMENTS
            request.record_holder = ""
        elif case in ("end-user-context", "for-provider+context", "for-provider"):
            request.data_category = id_pb.DATA_CATEGORY_REFERRAL
            request.record_holder = ""
            if case != "for-provider":
                target = (
                    self.persona(row).organisation
                    if case == "end-user-context"
                    else OFFER_TARGETS["gli"]
                )
                request.referral_context.CopyFrom(
                    id_rpc.ReferralContext(
                        referral=f"{patient}/referrals/r",
                        target_organisation=f"organisations/{target}",
                        referrer_organisation=f"organisations/{PRACTICE}",
                    )
                )
                p = self.patient(row)
                if p.referrals:
                    request.referral_context.referral = p.referrals["gli"]
            if case != "end-user-context":
                request.subject.CopyFrom(self._subject("coach.degroot"))
        elif case == "end-user-subject":
            request.subject.CopyFrom(self._subject("dr.devries"))
        return request

    def _identity_authorize(self, row: Row) -> Result:
        p = self.patient(row)
        request = self._authorize_request(row, p.name)
        reply, result = _call(
            lambda: self.facts.identity.Authorize(
                request, metadata=self.metadata(row), timeout=TIMEOUT
            )
        )
        if reply is None:
            return result
        decision = id_pb.Decision.Name(reply.decision).removeprefix("DECISION_")
        return Result(f"{decision} {reply.reason}")

    def _identity_batch_authorize(self, row: Row) -> Result:
        p = self.patient(row)
        request = id_rpc.BatchAuthorizeRequest(
            patients=[p.name],
            data_category=id_pb.DATA_CATEGORY_CARE_PLAN,
            action=id_pb.ACTION_READ,
            record_holder=f"organisations/{PRACTICE}",
        )
        reply, result = _call(
            lambda: self.facts.identity.BatchAuthorize(
                request, metadata=self.metadata(row), timeout=TIMEOUT
            )
        )
        if reply is None:
            return result
        (one,) = reply.decisions
        return Result(f"{id_pb.Decision.Name(one.decision).removeprefix('DECISION_')} {one.reason}")

    # ---------------------------------------------------------------- referral

    def _referral_create_referral(self, row: Row) -> Result:
        """Refers the patient to the GLI again: a permitted clinician of the practice gets
        ALREADY_EXISTS (the practice's open referral), nothing is created; one of another
        organisation gets a referral of its own (open referrals are per referring
        organisation), made on a copy of the patient that no other row reads."""
        p = self.patient(row)
        p = self.facts.patients.get(f"{p.id}{REFER_COPY}", p)
        return _attempt(
            lambda: self.facts.referral.CreateReferral(
                rf_rpc.CreateReferralRequest(
                    parent=p.name,
                    referral=rf.Referral(offer=OFFERS["gli"], reason="DM2", profile=PROFILE),
                    request_id=f"authz-{uuid.uuid4().hex[:12]}",
                ),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _referral_get_referral(self, row: Row) -> Result:
        name = self.referral_name(row, self.patient(row))
        return _attempt(
            lambda: self.facts.referral.GetReferral(
                rf_rpc.GetReferralRequest(name=name), metadata=self.metadata(row), timeout=TIMEOUT
            )
        )

    def _labels(self, p: PatientRecords, names: Iterable[str]) -> str:
        by_name = {v: k for k, v in p.referrals.items()}
        labels = sorted({by_name.get(n, "unknown") for n in names})
        return "+".join(labels) or "none"

    def _referral_list_referrals(self, row: Row) -> Result:
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.referral.ListReferrals(
                rf_rpc.ListReferralsRequest(parent=p.name, page_size=50),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            ),
            lambda reply: self._labels(p, (r.name for r in reply.referrals)),
        )

    def _referral_transition_referral(self, row: Row) -> Result:
        """requested -> in-progress is not in the status machine: a party that may see the
        referral gets FAILED_PRECONDITION INVALID_TRANSITION, and nothing changes."""
        name = self.referral_name(row, self.patient(row))
        return _attempt(
            lambda: self.facts.referral.TransitionReferral(
                rf_rpc.TransitionReferralRequest(name=name, status=rf.REFERRAL_STATUS_IN_PROGRESS),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _referral_record_referral_outcome(self, row: Row) -> Result:
        """Feedback on a referral still requested: the target gets FAILED_PRECONDITION
        OUTCOME_NOT_ALLOWED_IN_STATE, another party PERMISSION_DENIED; nothing changes."""
        name = self.referral_name(row, self.patient(row))
        return _attempt(
            lambda: self.facts.referral.RecordReferralOutcome(
                rf_rpc.RecordReferralOutcomeRequest(
                    name=name, outcome=rf.ReferralOutcome(attendance=rf.ATTENDANCE_PARTIAL)
                ),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _referral_watch_referral_events(self, row: Row) -> Result:
        p = self.patient(row)

        def watch() -> list[Any]:
            return list(
                self.facts.referral.WatchReferralEvents(
                    rf_rpc.WatchReferralEventsRequest(patient=p.name, no_follow=True),
                    metadata=self.metadata(row),
                    timeout=TIMEOUT,
                )
            )

        return _attempt(watch, lambda events: self._labels(p, (e.referral for e in events)))

    # ---------------------------------------------------------------- careplan

    def _careplan_create_care_plan(self, row: Row) -> Result:
        """The patient has a plan: a permitted GP or nurse gets ALREADY_EXISTS."""
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.careplan.CreateCarePlan(
                cp_rpc.CreateCarePlanRequest(
                    parent=p.name, care_plan=cp.CarePlan(what_matters=["Zelf boodschappen doen"])
                ),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _careplan_get_care_plan(self, row: Row) -> Result:
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.careplan.GetCarePlan(
                cp_rpc.GetCarePlanRequest(name=f"{p.name}/carePlan"),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _careplan_list_care_plan_revisions(self, row: Row) -> Result:
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.careplan.ListCarePlanRevisions(
                cp_rpc.ListCarePlanRevisionsRequest(parent=f"{p.name}/carePlan"),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _careplan_update_care_plan(self, row: Row) -> Result:
        """A progress entry with a stale etag: a permitted caller gets ABORTED
        ETAG_MISMATCH, and the plan does not change."""
        p = self.patient(row)
        plan = cp.CarePlan(name=f"{p.name}/carePlan", etag=STALE_CARE_PLAN_ETAG)
        return _attempt(
            lambda: self.facts.careplan.UpdateCarePlan(
                cp_rpc.UpdateCarePlanRequest(
                    care_plan=plan, update_mask=field_mask_pb2.FieldMask(paths=["goals.progress"])
                ),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _careplan_item(self, row: Row, method: str, **fields: Any) -> Result:
        """One item of the plan with a stale etag: a caller permitted to write its group
        gets ABORTED ETAG_MISMATCH, and the plan does not change."""
        p = self.patient(row)
        plan = f"{p.name}/carePlan"
        request_type = getattr(cp_rpc, f"{method}Request")
        if method.startswith("Create"):
            request = request_type(parent=plan, etag=STALE_CARE_PLAN_ETAG, **fields)
        else:
            collection = {"Goal": "goals", "Action": "actions"}.get(
                method.removeprefix("Update").removeprefix("Delete"), "evaluations"
            )
            request = request_type(
                name=f"{plan}/{collection}/item-1", etag=STALE_CARE_PLAN_ETAG, **fields
            )
        return _attempt(
            lambda: getattr(self.facts.careplan, method)(
                request, metadata=self.metadata(row), timeout=TIMEOUT
            )
        )

    def _careplan_create_goal(self, row: Row) -> Result:
        return self._careplan_item(row, "CreateGoal", goal=cp.Goal(description="Zwemmen"))

    def _careplan_update_goal(self, row: Row) -> Result:
        return self._careplan_item(row, "UpdateGoal", goal=cp.Goal(description="Zwemmen"))

    def _careplan_delete_goal(self, row: Row) -> Result:
        return self._careplan_item(row, "DeleteGoal")

    def _careplan_create_action(self, row: Row) -> Result:
        action = cp.Action(description="Controle", kind=cp.ACTION_KIND_CONSULT)
        return self._careplan_item(row, "CreateAction", action=action)

    def _careplan_update_action(self, row: Row) -> Result:
        return self._careplan_item(row, "UpdateAction", action=cp.Action(schedule="FREQ=WEEKLY"))

    def _careplan_delete_action(self, row: Row) -> Result:
        return self._careplan_item(row, "DeleteAction")

    def _careplan_create_evaluation_moment(self, row: Row) -> Result:
        moment = cp.EvaluationMoment(review_time=timestamp_pb2.Timestamp(seconds=1_900_000_000))
        return self._careplan_item(row, "CreateEvaluationMoment", evaluation_moment=moment)

    def _careplan_update_evaluation_moment(self, row: Row) -> Result:
        moment = cp.EvaluationMoment(outcome="Besproken")
        return self._careplan_item(row, "UpdateEvaluationMoment", evaluation_moment=moment)

    def _careplan_delete_evaluation_moment(self, row: Row) -> Result:
        return self._careplan_item(row, "DeleteEvaluationMoment")

    # ---------------------------------------------------------------- outcomes

    def _outcomes_create_enrolment(self, row: Row) -> Result:
        """The practice's DM2 enrolment, sent again: a permitted caller gets it back."""
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.outcomes.CreateEnrolment(
                enrolment_request(p.id), metadata=self.metadata(row), timeout=TIMEOUT
            )
        )

    def _outcomes_batch_create_enrolments(self, row: Row) -> Result:
        p = self.patient(row)
        request = oc_rpc.BatchCreateEnrolmentsRequest(requests=[enrolment_request(p.id)])

        def call() -> Any:
            return self.facts.outcomes.BatchCreateEnrolments(
                request, metadata=self.metadata(row), timeout=TIMEOUT
            )

        reply, result = _call(call)
        if reply is None:
            return result
        (one,) = reply.results
        return Result(f"REJECTED {one.rejection_reason}" if one.rejection_reason else "OK")

    def _outcomes_ingest_measurements(self, row: Row) -> Result:
        """The practice's HbA1c row sent again: for a permitted caller a duplicate."""
        p = self.patient(row)

        def call() -> Any:
            return self.facts.outcomes.IngestMeasurements(
                iter([oc_rpc.IngestMeasurementsRequest(rows=[measurement_row(p.id)])]),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )

        reply, result = _call(call)
        if reply is None:
            return result
        rejected = [r for r in reply.results if r.outcome == oc_rpc.ROW_OUTCOME_REJECTED]
        if rejected:
            return Result(f"REJECTED {rejected[0].reason}")
        return Result("OK")

    def _outcomes_list_enrolments(self, row: Row) -> Result:
        p = self.patient(row)
        return _attempt(
            lambda: self.facts.outcomes.ListEnrolments(
                oc_rpc.ListEnrolmentsRequest(parent=p.name),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            )
        )

    def _outcomes_list_measurements(self, row: Row) -> Result:
        """``sees``: whose measurements were listed, by record holder: the ``practice``'s,
        the ``hospital``'s (case ``two-holders``: a patient with both)."""
        p = self.patient(row)
        labels = {PRACTICE: "practice", "hosp-catharina": "hospital"}

        def sees(reply: oc_rpc.ListMeasurementsResponse) -> str:
            holders = {
                (m.record_holder or m.source.organisation).removeprefix("organisations/")
                for m in reply.measurements
            }
            named = [labels.get(h, h) for h in sorted(holders, key=lambda h: h != PRACTICE)]
            return "+".join(named) or "none"

        return _attempt(
            lambda: self.facts.outcomes.ListMeasurements(
                oc_rpc.ListMeasurementsRequest(parent=p.name),
                metadata=self.metadata(row),
                timeout=TIMEOUT,
            ),
            sees,
        )
