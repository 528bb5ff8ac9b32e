"""gRPC adapter of the identity service: proto in, use case, proto out. No try/except:
domain errors are mapped by the error interceptor."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import Message

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity import minimisation, models
from identity.policy import Basis, Decision
from identity.use_cases import (
    access_log,
    authorization,
    consents,
    organisations,
    patients,
    people,
    relationships,
)
from identity.use_cases.common import stored_fingerprint
from identity.use_cases.deps import Deps
from identity.verify_rpc import verify_response, verify_scope
from servicekit import enums, names
from servicekit.auth import Principal, current_principal
from servicekit.authorization import principal_of
from servicekit.errors import InvalidArgument, Violations
from servicekit.idempotency import IdempotentRequest
from servicekit.paging import Paging, PositionKind
from servicekit.service_server import Servicer
from servicekit.timestamps import from_request, to_proto

ORG_TYPES = enums.EnumMap(pb.OrganisationType, models.OrganisationType)
CATEGORIES = enums.EnumMap(pb.DataCategory, models.DataCategory)
ACTIONS = enums.EnumMap(pb.Action, models.Action)
KINDS = enums.EnumMap(pb.CareRelationshipKind, models.RelationshipKind)
DECISIONS = enums.EnumMap(pb.Decision, Decision)
BASES = enums.EnumMap(pb.Basis, Basis, aliases={Basis.NONE.value: "BASIS_UNSPECIFIED"})
CONSENT_STATES = enums.EnumMap(pb.ConsentState, models.ConsentState)
CONSENT_EVENT_TYPES = enums.EnumMap(pb.ConsentEventType, ("given", "withdrawn"))


# Lists ordered by a numeric id (consent events, access-log entries).
AFTER_SEQUENCE = PositionKind({"after": int})


# ---------------------------------------------------------------- to proto


def organisation_pb(org: models.Organisation) -> pb.Organisation:
    return pb.Organisation(
        name=f"organisations/{org.id}",
        display_name=org.display_name,
        type=pb.OrganisationType.ValueType(ORG_TYPES.to_proto(org.type)),
        care_group=f"organisations/{org.care_group_id}",
        agb_code=org.agb_code or "",
        ura=org.ura or "",
        uzovi=org.uzovi or "",
        cbs_municipality_code=org.cbs_municipality_code or "",
        service_account_client_id=org.service_account_client_id or "",
        create_time=to_proto(org.create_time),
        update_time=to_proto(org.update_time),
        etag=org.etag,
    )


def patient_pb(
    patient: models.Patient, fields: frozenset[str] = minimisation.PATIENT_FIELDS
) -> pb.Patient:
    """The patient with only ``fields`` filled (identity.minimisation); never a BSN."""
    return pb.Patient(
        name=f"patients/{patient.id}",
        care_group=f"organisations/{patient.care_group_id}" if "care_group" in fields else "",
        create_time=to_proto(patient.create_time) if "create_time" in fields else None,
        update_time=to_proto(patient.update_time) if "update_time" in fields else None,
    )


def relationship_pb(rel: models.CareRelationship) -> pb.CareRelationship:
    return pb.CareRelationship(
        name=f"patients/{rel.patient_id}/careRelationships/{rel.id}",
        organisation=f"organisations/{rel.organisation_id}",
        kind=pb.CareRelationshipKind.ValueType(KINDS.to_proto(rel.kind)),
        start_time=to_proto(rel.start_time),
        end_time=to_proto(rel.end_time),
        create_time=to_proto(rel.create_time),
    )


def _selector_pb(type_: str | None, org_id: str | None) -> pb.OrganisationSelector:
    if org_id:
        return pb.OrganisationSelector(organisation=f"organisations/{org_id}")
    return pb.OrganisationSelector(
        category=pb.OrganisationType.ValueType(ORG_TYPES.to_proto(type_ or ""))
    )


def consent_pb(consent: models.Consent, now: Any) -> pb.Consent:
    return pb.Consent(
        name=f"patients/{consent.patient_id}/consents/{consent.id}",
        record_holder=_selector_pb(consent.record_holder_type, consent.record_holder_id),
        data_category=pb.DataCategory.ValueType(CATEGORIES.to_proto(consent.data_category)),
        requester=_selector_pb(consent.requester_type, consent.requester_id),
        start_time=to_proto(consent.start_time),
        end_time=to_proto(consent.end_time),
        withdraw_time=to_proto(consent.withdraw_time),
        state=pb.ConsentState.ValueType(CONSENT_STATES.to_proto(consent.state_at(now))),
        recorded_by=consent.recorded_by,
        create_time=to_proto(consent.create_time),
        update_time=to_proto(consent.update_time),
        etag=consent.etag,
    )


def log_entry_pb(entry: models.AccessLogEntry) -> pb.AccessLogEntry:
    return pb.AccessLogEntry(
        name=f"accessLogEntries/{entry.id}",
        sequence=entry.sequence,
        stripe=entry.stripe,
        event=entry.event,
        event_time=to_proto(entry.event_time),
        patient=f"patients/{entry.patient_id}" if entry.patient_id != "*" else "",
        user=entry.user_id,
        responsible_user=entry.responsible_user,
        organisation=f"organisations/{entry.organisation_id}" if entry.organisation_id else "",
        roles=[r for r in entry.roles.split(",") if r],
        data_category=pb.DataCategory.ValueType(CATEGORIES.to_proto(entry.data_category)),
        action=pb.Action.ValueType(ACTIONS.to_proto(entry.action)),
        purpose=entry.purpose,
        decision=pb.Decision.ValueType(DECISIONS.to_proto(entry.decision)),
        basis=pb.Basis.ValueType(BASES.to_proto(entry.basis)),
        reason=entry.reason,
        emergency=entry.emergency,
        emergency_reason=entry.emergency_reason,
        access_point=entry.access_point,
        care_group=f"organisations/{entry.care_group_id}",
        previous_hash=entry.previous_hash,
        entry_hash=entry.entry_hash,
    )


# ---------------------------------------------------------------- from proto


def _organisation_input(org: pb.Organisation) -> organisations.OrganisationInput:
    return organisations.OrganisationInput(
        display_name=org.display_name,
        type=enums.from_proto(ORG_TYPES, org.type, "organisation.type"),
        agb_code=org.agb_code,
        ura=org.ura,
        uzovi=org.uzovi,
        cbs_municipality_code=org.cbs_municipality_code,
        etag=org.etag,
    )


def _selector(
    sel: pb.OrganisationSelector, field: str
) -> tuple[models.OrganisationType | None, str]:
    which = sel.WhichOneof("selector")
    if which == "organisation":
        return None, names.optional_id(sel.organisation, "organisations", f"{field}.organisation")
    if which == "category":
        return enums.from_proto(ORG_TYPES, sel.category, f"{field}.category"), ""
    return None, ""


# What the access log can hold of a subject that a platform service names (identity.models
# AccessLogEntry): longer values are the caller's mistake, refused before anything is written.
_SUBJECT_LIMITS = {"user": 200, "on_behalf_of": 200, "client_id": 200, "patient": 137}
_ORGANISATION_ID_LIMIT = 63
_ROLES_LIMIT = 300


def _check_subject(subject: pb.Subject) -> None:
    v = Violations()
    for field, limit in _SUBJECT_LIMITS.items():
        if len(getattr(subject, field)) > limit:
            v.add(f"subject.{field}", f"at most {limit} characters", "SUBJECT_FIELD_TOO_LONG")
    for field in ("organisation", "care_group"):
        org = str(getattr(subject, field)).removeprefix("organisations/")
        if len(org) > _ORGANISATION_ID_LIMIT:
            v.add(
                f"subject.{field}",
                f"an organisation id of at most {_ORGANISATION_ID_LIMIT} characters",
                "SUBJECT_FIELD_TOO_LONG",
            )
    if sum(len(r) + 1 for r in subject.roles) > _ROLES_LIMIT:
        v.add(
            "subject.roles", f"at most {_ROLES_LIMIT} characters in all", "SUBJECT_FIELD_TOO_LONG"
        )
    v.raise_if_any()


def _subject(subject: pb.Subject) -> Principal:
    _check_subject(subject)
    return principal_of(subject)


# ListAccessLogEntries' order_by (AIP-132): the log's order, oldest or newest first.
_LOG_ORDERS = {"": False, "event_time": False, "event_time asc": False, "event_time desc": True}


def _newest_first(order_by: str) -> bool:
    normal = " ".join(order_by.split())
    if normal not in _LOG_ORDERS:
        raise InvalidArgument.single(
            "order_by", "must be 'event_time' or 'event_time desc'", "INVALID_ORDER_BY"
        )
    return _LOG_ORDERS[normal]


class IdentityServicer(Servicer[Deps], rpc_grpc.IdentityServiceServicer):
    def _caller(self) -> Principal:
        """The caller, as whom the call is decided: a delegate acting for a person of its
        organisation takes that person's roles; naming anyone else is PERMISSION_DENIED
        ON_BEHALF_OF_NOT_ALLOWED (identity.people). Authorize and BatchAuthorize decide that
        themselves, as a logged denial."""
        return people.acting_principal(self.deps, current_principal())

    def _idempotent(self, caller: Principal, request: Message, method: str) -> IdempotentRequest:
        """A create's request_id and request fingerprint (servicekit.idempotency), the
        fingerprint stored keyed (identity.use_cases.common.keyed_fingerprint)."""
        return IdempotentRequest.from_message(
            caller, request, method, stored=stored_fingerprint(self.deps)
        )

    def CreateOrganisation(
        self, request: rpc.CreateOrganisationRequest, context: grpc.ServicerContext
    ) -> pb.Organisation:
        caller = self._caller()
        org = organisations.create_organisation(
            self.deps,
            caller,
            _organisation_input(request.organisation),
            request.organisation_id,
            provision_service_account=request.provision_service_account,
            request=self._idempotent(caller, request, "CreateOrganisation"),
        )
        return organisation_pb(org)

    def GetOrganisation(
        self, request: rpc.GetOrganisationRequest, context: grpc.ServicerContext
    ) -> pb.Organisation:
        org_id = names.parse_one(request.name, "organisations")
        return organisation_pb(organisations.get_organisation(self.deps, self._caller(), org_id))

    def ListOrganisations(
        self, request: rpc.ListOrganisationsRequest, context: grpc.ServicerContext
    ) -> rpc.ListOrganisationsResponse:
        type_ = enums.from_proto(ORG_TYPES, request.type, "type")
        paging = Paging(request, "orgs", request.type)
        page = organisations.list_organisations(self.deps, self._caller(), type_, paging.page)
        return paging.reply(rpc.ListOrganisationsResponse, "organisations", page, organisation_pb)

    def UpdateOrganisation(
        self, request: rpc.UpdateOrganisationRequest, context: grpc.ServicerContext
    ) -> pb.Organisation:
        org_id = names.parse_one(
            request.organisation.name, "organisations", field="organisation.name"
        )
        data = _organisation_input(request.organisation)
        org = organisations.update_organisation(
            self.deps, self._caller(), org_id, data, list(request.update_mask.paths)
        )
        return organisation_pb(org)

    def RegisterPatient(
        self, request: rpc.RegisterPatientRequest, context: grpc.ServicerContext
    ) -> pb.Patient:
        caller = self._caller()
        patient = patients.register_patient(
            self.deps,
            caller,
            request.bsn,
            request.patient_id,
            self._idempotent(caller, request, "RegisterPatient"),
        )
        return patient_pb(patient)

    def GetPatient(
        self, request: rpc.GetPatientRequest, context: grpc.ServicerContext
    ) -> pb.Patient:
        patient_id = names.parse_one(request.name, "patients")
        principal = self._caller()
        patient = patients.get_patient(self.deps, principal, patient_id)
        return patient_pb(patient, minimisation.patient_fields(principal))

    def LookupPatient(
        self, request: rpc.LookupPatientRequest, context: grpc.ServicerContext
    ) -> pb.Patient:
        return patient_pb(
            patients.lookup_patient(self.deps, self._caller(), request.bsn, request.purpose)
        )

    def CreateCareRelationship(
        self, request: rpc.CreateCareRelationshipRequest, context: grpc.ServicerContext
    ) -> pb.CareRelationship:
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        rel = request.care_relationship
        org_id = names.optional_id(
            rel.organisation, "organisations", "care_relationship.organisation"
        )
        if not org_id:
            raise InvalidArgument.single(
                "care_relationship.organisation", "is required", "ORGANISATION_REQUIRED"
            )
        caller = self._caller()
        created = relationships.create_care_relationship(
            self.deps,
            caller,
            patient_id,
            org_id,
            enums.from_proto(KINDS, rel.kind, "care_relationship.kind"),
            from_request(
                rel.start_time, "care_relationship.start_time", rel.HasField("start_time")
            ),
            from_request(rel.end_time, "care_relationship.end_time", rel.HasField("end_time")),
            self._idempotent(caller, request, "CreateCareRelationship"),
        )
        return relationship_pb(created)

    def ListCareRelationships(
        self, request: rpc.ListCareRelationshipsRequest, context: grpc.ServicerContext
    ) -> rpc.ListCareRelationshipsResponse:
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        paging = Paging(request, "rels", patient_id)
        page = relationships.list_care_relationships(
            self.deps, self._caller(), patient_id, paging.page
        )
        return paging.reply(
            rpc.ListCareRelationshipsResponse, "care_relationships", page, relationship_pb
        )

    def EndCareRelationship(
        self, request: rpc.EndCareRelationshipRequest, context: grpc.ServicerContext
    ) -> pb.CareRelationship:
        patient_id, rel_id = names.parse(request.name, "patients", "careRelationships")
        rel = relationships.end_care_relationship(
            self.deps,
            self._caller(),
            patient_id,
            rel_id,
            from_request(request.end_time, "end_time", request.HasField("end_time")),
        )
        return relationship_pb(rel)

    def CreateConsent(
        self, request: rpc.CreateConsentRequest, context: grpc.ServicerContext
    ) -> pb.Consent:
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        c = request.consent
        holder_type, holder_id = _selector(c.record_holder, "consent.record_holder")
        requester_type, requester_id = _selector(c.requester, "consent.requester")
        data = consents.ConsentInput(
            data_category=enums.from_proto(CATEGORIES, c.data_category, "consent.data_category"),
            record_holder_type=holder_type,
            record_holder_id=holder_id,
            requester_type=requester_type,
            requester_id=requester_id,
            start_time=from_request(c.start_time, "consent.start_time", c.HasField("start_time")),
            end_time=from_request(c.end_time, "consent.end_time", c.HasField("end_time")),
        )
        caller = self._caller()
        consent = consents.create_consent(
            self.deps,
            caller,
            patient_id,
            data,
            self._idempotent(caller, request, "CreateConsent"),
        )
        return consent_pb(consent, self.deps.clock())

    def GetConsent(
        self, request: rpc.GetConsentRequest, context: grpc.ServicerContext
    ) -> pb.Consent:
        patient_id, consent_id = names.parse(request.name, "patients", "consents")
        consent = consents.get_consent(self.deps, self._caller(), patient_id, consent_id)
        return consent_pb(consent, self.deps.clock())

    def ListConsents(
        self, request: rpc.ListConsentsRequest, context: grpc.ServicerContext
    ) -> rpc.ListConsentsResponse:
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        paging = Paging(request, "consents", patient_id)
        page = consents.list_consents(self.deps, self._caller(), patient_id, paging.page)
        now = self.deps.clock()
        return paging.reply(
            rpc.ListConsentsResponse, "consents", page, lambda c: consent_pb(c, now)
        )

    def WithdrawConsent(
        self, request: rpc.WithdrawConsentRequest, context: grpc.ServicerContext
    ) -> pb.Consent:
        patient_id, consent_id = names.parse(request.name, "patients", "consents")
        consent = consents.withdraw_consent(
            self.deps, self._caller(), patient_id, consent_id, request.etag
        )
        return consent_pb(consent, self.deps.clock())

    def ListConsentEvents(
        self, request: rpc.ListConsentEventsRequest, context: grpc.ServicerContext
    ) -> rpc.ListConsentEventsResponse:
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        paging = Paging(request, "consent-events", patient_id, position=AFTER_SEQUENCE)
        page = consents.list_consent_events(self.deps, self._caller(), patient_id, paging.page)
        events = [
            pb.ConsentEvent(
                consent=f"patients/{e.patient_id}/consents/{e.consent_id}",
                type=pb.ConsentEventType.ValueType(CONSENT_EVENT_TYPES.to_proto(e.type)),
                actor=e.actor,
                event_time=to_proto(e.event_time),
            )
            for e in page.items
        ]
        return rpc.ListConsentEventsResponse(
            consent_events=events, next_page_token=paging.token(page)
        )

    def Authorize(
        self, request: rpc.AuthorizeRequest, context: grpc.ServicerContext
    ) -> rpc.AuthorizeResponse:
        patient_id = names.parse_one(request.patient, "patients", field="patient")
        ctx = request.referral_context
        data = authorization.AuthorizeInput(
            patient_id=patient_id,
            data_category=enums.from_proto(CATEGORIES, request.data_category, "data_category"),
            action=enums.from_proto(ACTIONS, request.action, "action"),
            purpose=request.purpose,
            emergency_reason=request.emergency_reason,
            record_holder_id=names.optional_id(
                request.record_holder, "organisations", "record_holder"
            ),
            subject=_subject(request.subject) if request.HasField("subject") else None,
            referral_id=ctx.referral,
            referral_target_id=names.optional_id(
                ctx.target_organisation, "organisations", "referral_context.target_organisation"
            ),
            access_point=request.access_point,
        )
        result = authorization.authorize(self.deps, current_principal(), data)
        return rpc.AuthorizeResponse(
            decision=pb.Decision.ValueType(DECISIONS.to_proto(result.answer.decision.value)),
            basis=pb.Basis.ValueType(BASES.to_proto(result.answer.basis.value)),
            reason=result.answer.reason,
            emergency=result.answer.emergency,
            access_log_entry=f"accessLogEntries/{result.sequence}",
            care_group=f"organisations/{result.care_group_id}",
        )

    def BatchAuthorize(
        self, request: rpc.BatchAuthorizeRequest, context: grpc.ServicerContext
    ) -> rpc.BatchAuthorizeResponse:
        patient_ids = [
            names.parse_one(p, "patients", field=f"patients[{i}]")
            for i, p in enumerate(request.patients)
        ]
        data = authorization.AuthorizeInput(
            patient_id="",
            data_category=enums.from_proto(CATEGORIES, request.data_category, "data_category"),
            action=enums.from_proto(ACTIONS, request.action, "action"),
            purpose=request.purpose,
            record_holder_id=names.optional_id(
                request.record_holder, "organisations", "record_holder"
            ),
            subject=_subject(request.subject) if request.HasField("subject") else None,
            access_point=request.access_point,
        )
        decisions = authorization.batch_authorize(self.deps, current_principal(), patient_ids, data)
        return rpc.BatchAuthorizeResponse(
            decisions=[
                rpc.PatientDecision(
                    patient=f"patients/{d.patient_id}",
                    decision=pb.Decision.ValueType(DECISIONS.to_proto(d.answer.decision.value)),
                    basis=pb.Basis.ValueType(BASES.to_proto(d.answer.basis.value)),
                    reason=d.answer.reason,
                    access_log_entry=f"accessLogEntries/{d.sequence}",
                )
                for d in decisions
            ]
        )

    def ResolveDelegation(
        self, request: rpc.ResolveDelegationRequest, context: grpc.ServicerContext
    ) -> rpc.ResolveDelegationResponse:
        subject = _subject(request.subject) if request.HasField("subject") else None
        person = people.resolve_delegation(self.deps, current_principal(), subject)
        return rpc.ResolveDelegationResponse(
            person=person.user,
            roles=sorted(person.roles),
            organisation=person.organisation,
            care_group=person.care_group,
        )

    def LookupPeople(
        self, request: rpc.LookupPeopleRequest, context: grpc.ServicerContext
    ) -> rpc.LookupPeopleResponse:
        found = people.lookup_people(self.deps, self._caller(), list(request.users))
        return rpc.LookupPeopleResponse(
            people=[
                rpc.PersonSummary(
                    user=p.user,
                    display_name=p.display_name,
                    roles=list(p.roles),
                    organisation=f"organisations/{p.organisation_id}",
                    organisation_display_name=p.organisation_display_name,
                )
                for p in found.people
            ],
            not_found=found.not_found,
        )

    def ListAccessLogEntries(
        self, request: rpc.ListAccessLogEntriesRequest, context: grpc.ServicerContext
    ) -> rpc.ListAccessLogEntriesResponse:
        patient_id = (
            names.parse_one(request.patient, "patients", field="patient") if request.patient else ""
        )
        newest_first = _newest_first(request.order_by)
        paging = Paging(
            request,
            "log",
            patient_id,
            request.emergency_only,
            newest_first,
            position=AFTER_SEQUENCE,
        )
        page = access_log.list_access_log(
            self.deps,
            self._caller(),
            patient_id,
            paging.page,
            emergency_only=request.emergency_only,
            newest_first=newest_first,
        )
        return paging.reply(
            rpc.ListAccessLogEntriesResponse, "access_log_entries", page, log_entry_pb
        )

    def VerifyAccessLog(
        self, request: rpc.VerifyAccessLogRequest, context: grpc.ServicerContext
    ) -> rpc.VerifyAccessLogResponse:
        scope, paging = verify_scope(request, self.deps.log_trust().verify_max_entries)
        result = access_log.verify_access_log(self.deps, self._caller(), scope)
        return verify_response(result, paging)
