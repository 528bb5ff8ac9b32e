"""The identity use cases, as plain functions over a unit of work.

Every function takes the verified :class:`~servicekit.auth.Principal`. Every read or write
of patient data passes through :func:`_decide_and_log`, which applies the decision table
of :mod:`identity.policy` and appends one access-log entry in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from identity import access_log_verify, errors
from identity.access_log import AccessLogTrust
from identity.access_log_verify import Verification
from identity.models import (
    AccessLogEntry,
    Action,
    AppendedEntry,
    CareRelationship,
    Consent,
    ConsentEvent,
    DataCategory,
    LogRecord,
    Organisation,
    OrganisationType,
    OrgRef,
    Patient,
    PatientFacts,
    RelationshipKind,
    RequestRecord,
    normalise_bsn,
)
from identity.policy import Answer, Basis, Decision, Question, decide
from identity.unit_of_work import UnitOfWork
from servicekit import dutch, idempotency, names
from servicekit.auth import Principal
from servicekit.errors import Aborted, InvalidArgument, Violations

T = TypeVar("T")
V = TypeVar("V")

ADMIN_ROLES = frozenset({"care-group-admin"})
REGISTER_ROLES = frozenset({"gp", "practice-nurse", "specialist", "care-group-admin"})
RECORDING_ROLES = frozenset({"gp", "practice-nurse", "specialist"})
VERIFY_ROLES = frozenset({"auditor", "care-group-admin"})


class Provisioner(Protocol):
    """Creates the Keycloak service-account client of a new organisation."""

    def provision(self, organisation: Organisation) -> str: ...


class Directory:
    """Decision inputs cached in the process.

    An organisation's type and care group and a patient's care group are kept for the life
    of the process, because nothing can change them. A patient's care relationships and
    consents can change: they are kept with the facts version they were read at, every
    access-log append checks that version in the database in the same statement, and a
    stale entry is dropped and read again (see :func:`_decide_and_append`).
    """

    MAX_ENTRIES = 200_000

    def __init__(self) -> None:
        self._orgs: dict[str, OrgRef] = {}
        self._patients: dict[str, str] = {}
        self._facts: dict[str, PatientFacts] = {}

    def organisation(self, uow: UnitOfWork, org_id: str) -> OrgRef | None:
        def load() -> OrgRef | None:
            org = uow.repo.organisation(org_id)
            return org.ref if org is not None else None

        return self._cached(self._orgs, org_id, load)

    def patient_care_group(self, uow: UnitOfWork, patient_id: str) -> str | None:
        def load() -> str | None:
            patient = uow.repo.patient(patient_id)
            return patient.care_group_id if patient is not None else None

        return self._cached(self._patients, patient_id, load)

    def patient_facts(self, uow: UnitOfWork, patient_id: str) -> PatientFacts | None:
        return self._cached(self._facts, patient_id, lambda: uow.repo.patient_facts(patient_id))

    def forget_facts(self, patient_id: str) -> None:
        self._facts.pop(patient_id, None)

    def _cached(self, store: dict[str, V], key: str, load: Callable[[], V | None]) -> V | None:
        """Found values are kept; a miss is asked again next time (it may exist by then)."""
        value = store.get(key)
        if value is None:
            value = load()
            if value is not None:
                if len(store) >= self.MAX_ENTRIES:
                    store.clear()
                store[key] = value
        return value


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    bsn_pepper: bytes
    provisioner: Provisioner | None = None
    directory: Directory = field(default_factory=Directory)
    # For use cases whose only write is one atomic statement (Authorize on PostgreSQL): no
    # BEGIN/COMMIT round trips. Defaults to ``uow``.
    autocommit_uow: Callable[[], UnitOfWork] | None = None

    def single_statement_uow(self) -> UnitOfWork:
        return (self.autocommit_uow or self.uow)()

    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    # The access log's chain keys and checkpoints (identity.access_log); without it, the
    # chain key derived from the BSN pepper and no checkpoints.
    access_log: AccessLogTrust | None = None

    def log_trust(self) -> AccessLogTrust:
        if self.access_log is None:
            self.access_log = AccessLogTrust.unconfigured(self.bsn_pepper)
        return self.access_log


@dataclass(frozen=True)
class OrganisationInput:
    display_name: str
    type: OrganisationType | None
    care_group_id: str = ""
    agb_code: str = ""
    ura: str = ""
    uzovi: str = ""
    cbs_municipality_code: str = ""
    etag: str = ""


@dataclass(frozen=True)
class ConsentInput:
    data_category: DataCategory | None
    record_holder_type: OrganisationType | None = None
    record_holder_id: str = ""
    requester_type: OrganisationType | None = None
    requester_id: str = ""
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None


@dataclass(frozen=True)
class AuthorizeInput:
    patient_id: str
    data_category: DataCategory | None
    action: Action | None
    purpose: str = ""
    emergency_reason: str = ""
    record_holder_id: str = ""
    subject: Principal | None = None
    referral_id: str = ""
    referral_target_id: str = ""
    access_point: str = ""


@dataclass(frozen=True)
class AuthorizeResult:
    answer: Answer
    sequence: int
    care_group_id: str


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    last: str | int | None


def _page(items: Sequence[T], limit: int, key: Callable[[T], str | int]) -> Page[T]:
    """A page from ``limit + 1`` fetched items: the extra one only says there is more."""
    if len(items) > limit:
        return Page(items[:limit], key(items[limit - 1]) if limit else None)
    return Page(items, None)


# ---------------------------------------------------------------- organisations


def _validate_organisation(
    data: OrganisationInput, v: Violations, prefix: str = "organisation"
) -> None:
    if not data.display_name.strip():
        v.add(f"{prefix}.display_name", "is required", "DISPLAY_NAME_REQUIRED")
    elif len(data.display_name) > 200:
        v.add(f"{prefix}.display_name", "must be at most 200 characters", "DISPLAY_NAME_TOO_LONG")
    if data.type is None:
        v.add(f"{prefix}.type", "is required", "ORGANISATION_TYPE_REQUIRED")
    if data.agb_code and not dutch.is_agb(data.agb_code):
        v.add(f"{prefix}.agb_code", "an AGB code has exactly 8 digits", "INVALID_AGB_CODE")
    if data.type in (OrganisationType.GP_PRACTICE, OrganisationType.HOSPITAL) and not data.agb_code:
        v.add(f"{prefix}.agb_code", "is required for practices and hospitals", "AGB_CODE_REQUIRED")
    if data.ura and not dutch.is_ura(data.ura):
        v.add(f"{prefix}.ura", "a URA has at most 8 digits", "INVALID_URA")
    if data.uzovi and not dutch.is_uzovi(data.uzovi):
        v.add(f"{prefix}.uzovi", "a UZOVI code has exactly 4 digits", "INVALID_UZOVI")
    if data.type is OrganisationType.INSURER and not data.uzovi:
        v.add(f"{prefix}.uzovi", "is required for insurers", "UZOVI_REQUIRED")
    if data.uzovi and data.type not in (OrganisationType.INSURER, None):
        v.add(f"{prefix}.uzovi", "only insurers have a UZOVI code", "UZOVI_NOT_ALLOWED")
    code = data.cbs_municipality_code
    if code and not dutch.is_cbs_municipality(code):
        v.add(
            f"{prefix}.cbs_municipality_code",
            "a CBS municipality code is GM followed by 4 digits",
            "INVALID_CBS_MUNICIPALITY_CODE",
        )
    if data.type is OrganisationType.MUNICIPALITY and not code:
        v.add(
            f"{prefix}.cbs_municipality_code", "is required for municipalities", "CBS_CODE_REQUIRED"
        )
    if code and data.type not in (OrganisationType.MUNICIPALITY, None):
        v.add(
            f"{prefix}.cbs_municipality_code",
            "only municipalities have one",
            "CBS_CODE_NOT_ALLOWED",
        )


def _require_admin_of(principal: Principal, care_group_id: str) -> None:
    if not principal.roles & ADMIN_ROLES or principal.care_group != names_org(care_group_id):
        raise errors.RoleNotPermitted("only the care group's administrator may do this")


def names_org(org_id: str) -> str:
    return f"organisations/{org_id}"


def _org_id_of(principal: Principal) -> str:
    return principal.organisation.removeprefix("organisations/")


def _care_group_of(principal: Principal) -> str:
    return principal.care_group.removeprefix("organisations/")


def _replayed(uow: UnitOfWork, principal: Principal, request_id: str, method: str) -> str | None:
    if not request_id:
        return None
    idempotency.check(request_id)
    return idempotency.replayed(uow.repo.request_record(principal.subject, request_id), method)


def _remember(
    uow: UnitOfWork, principal: Principal, request_id: str, method: str, name: str
) -> None:
    if request_id:
        uow.repo.add(
            RequestRecord(
                caller=principal.subject, request_id=request_id, method=method, resource_name=name
            )
        )


def create_organisation(
    deps: Deps,
    principal: Principal,
    data: OrganisationInput,
    organisation_id: str,
    *,
    provision_service_account: bool = False,
    request_id: str = "",
) -> Organisation:
    v = Violations()
    if not names.valid_id(organisation_id):
        v.add(
            "organisation_id",
            "2-63 lower-case letters, digits and dashes",
            "INVALID_ORGANISATION_ID",
        )
    _validate_organisation(data, v)
    v.raise_if_any()
    care_group_id = (
        organisation_id if data.type is OrganisationType.CARE_GROUP else _care_group_of(principal)
    )
    if data.type is OrganisationType.CARE_GROUP:
        raise errors.RoleNotPermitted(
            "care groups are created by the platform operator (identity bootstrap-care-group)"
        )
    _require_admin_of(principal, care_group_id)
    with deps.uow() as uow:
        replay = _replayed(uow, principal, request_id, "CreateOrganisation")
        if replay is not None:
            existing = uow.repo.organisation(names.parse_one(replay, "organisations"))
            if existing is None:
                raise errors.OrganisationNotFound("organisation not found")
            return existing
        if uow.repo.organisation(organisation_id) is not None:
            raise errors.OrganisationExists(
                "an organisation with this id exists",
                metadata={"organisation": names_org(organisation_id)},
            )
        org = _new_organisation(organisation_id, data, care_group_id, deps.clock())
        if provision_service_account:
            if deps.provisioner is None:
                raise errors.ProvisioningUnavailable("Keycloak admin access is not configured")
            org.service_account_client_id = deps.provisioner.provision(org)
        uow.repo.add(org)
        _remember(uow, principal, request_id, "CreateOrganisation", names_org(org.id))
        uow.commit()
        return org


def _new_organisation(
    organisation_id: str, data: OrganisationInput, care_group_id: str, now: dt.datetime
) -> Organisation:
    assert data.type is not None
    return Organisation(
        id=organisation_id,
        display_name=data.display_name.strip(),
        type=data.type.value,
        care_group_id=care_group_id,
        agb_code=data.agb_code or None,
        ura=data.ura or None,
        uzovi=data.uzovi or None,
        cbs_municipality_code=data.cbs_municipality_code or None,
        version=1,
        create_time=now,
        update_time=now,
    )


def bootstrap_care_group(deps: Deps, organisation_id: str, data: OrganisationInput) -> Organisation:
    """Creates a care group (a tenant). Operator-only: reachable from the CLI, not the API."""
    v = Violations()
    if not names.valid_id(organisation_id):
        v.add(
            "organisation_id",
            "2-63 lower-case letters, digits and dashes",
            "INVALID_ORGANISATION_ID",
        )
    _validate_organisation(data, v)
    v.raise_if_any()
    with deps.uow() as uow:
        existing = uow.repo.organisation(organisation_id)
        if existing is not None:
            return existing
        org = _new_organisation(organisation_id, data, organisation_id, deps.clock())
        uow.repo.add(org)
        uow.commit()
        return org


def get_organisation(deps: Deps, principal: Principal, organisation_id: str) -> Organisation:
    with deps.uow() as uow:
        org = uow.repo.organisation(organisation_id)
        if org is None or org.care_group_id != _care_group_of(principal):
            raise errors.OrganisationNotFound("organisation not found")
        return org


def list_organisations(
    deps: Deps, principal: Principal, type_: OrganisationType | None, after: str | None, limit: int
) -> Page[Organisation]:
    with deps.uow() as uow:
        items = uow.repo.organisations(
            _care_group_of(principal), type_.value if type_ else None, after, limit + 1
        )
        return _page(items, limit, lambda item: item.id)


def update_organisation(
    deps: Deps,
    principal: Principal,
    organisation_id: str,
    data: OrganisationInput,
    mask: Sequence[str],
) -> Organisation:
    allowed = {"display_name", "agb_code", "ura", "uzovi", "cbs_municipality_code"}
    unknown = [p for p in mask if p not in allowed]
    if unknown:
        raise InvalidArgument.single(
            "update_mask", f"cannot update {', '.join(unknown)}", "FIELD_NOT_UPDATABLE"
        )
    with deps.uow() as uow:
        org = uow.repo.organisation(organisation_id)
        if org is None or org.care_group_id != _care_group_of(principal):
            raise errors.OrganisationNotFound("organisation not found")
        _require_admin_of(principal, org.care_group_id)
        if data.etag and data.etag != org.etag:
            raise errors.EtagMismatch("the organisation has changed; read it again")
        paths = list(mask) or sorted(allowed)
        merged = OrganisationInput(
            display_name=data.display_name if "display_name" in paths else org.display_name,
            type=OrganisationType(org.type),
            agb_code=data.agb_code if "agb_code" in paths else (org.agb_code or ""),
            ura=data.ura if "ura" in paths else (org.ura or ""),
            uzovi=data.uzovi if "uzovi" in paths else (org.uzovi or ""),
            cbs_municipality_code=data.cbs_municipality_code
            if "cbs_municipality_code" in paths
            else (org.cbs_municipality_code or ""),
        )
        v = Violations()
        _validate_organisation(merged, v)
        v.raise_if_any()
        org.display_name = merged.display_name.strip()
        org.agb_code = merged.agb_code or None
        org.ura = merged.ura or None
        org.uzovi = merged.uzovi or None
        org.cbs_municipality_code = merged.cbs_municipality_code or None
        org.version += 1
        org.update_time = deps.clock()
        uow.commit()
        return org


# ---------------------------------------------------------------- the access log


def _append_log(uow: UnitOfWork, record: LogRecord) -> AppendedEntry:
    appended = uow.repo.append_log(record, uow.log_stripe)
    assert appended is not None  # only a guarded append can be refused
    return appended


def _log_entry(
    *,
    event: str,
    principal: Principal,
    patient_id: str,
    care_group_id: str,
    data_category: DataCategory,
    action: Action,
    answer: Answer,
    now: dt.datetime,
    purpose: str = "",
    emergency_reason: str = "",
    access_point: str = "",
) -> LogRecord:
    return LogRecord(
        event=event,
        event_time=now,
        patient_id=patient_id[:128],
        care_group_id=care_group_id,
        user_id=principal.subject,
        responsible_user=principal.responsible_user,
        organisation_id=_org_id_of(principal),
        roles=",".join(sorted(principal.roles)),
        data_category=data_category.value,
        action=action.value,
        purpose=purpose[:200],
        decision=answer.decision.value,
        basis=answer.basis.value,
        reason=answer.reason,
        emergency=answer.emergency,
        emergency_reason=emergency_reason[:1000],
        access_point=(access_point or principal.client_id)[:200],
    )


def _decide(
    deps: Deps,
    uow: UnitOfWork,
    subject: Principal,
    patient_id: str,
    patient_care_group: str,
    category: DataCategory,
    action: Action,
    now: dt.datetime,
    facts: PatientFacts,
    *,
    record_holder_id: str = "",
    referral_target_id: str = "",
    emergency_reason: str = "",
) -> Answer:
    org_id = _org_id_of(subject)
    organisation = deps.directory.organisation(uow, org_id) if org_id else None
    record_holder = organisation
    if record_holder_id and record_holder_id != org_id:
        record_holder = deps.directory.organisation(uow, record_holder_id)
        if record_holder is None or record_holder.care_group_id != patient_care_group:
            raise InvalidArgument.single(
                "record_holder", "unknown organisation", "UNKNOWN_RECORD_HOLDER"
            )
    relationships = facts.relationships if organisation else ()
    needs_consent = (
        record_holder is not None
        and organisation is not None
        and record_holder.id != organisation.id
    )
    consents = facts.consents if needs_consent else ()
    question = Question(
        roles=subject.roles,
        subject_patient_id=subject.patient.removeprefix("patients/"),
        subject_organisation=organisation,
        subject_care_group_id=_care_group_of(subject),
        patient_id=patient_id,
        data_category=category,
        action=action,
        record_holder=record_holder,
        relationships=relationships,
        consents=consents,
        referral_target_id=referral_target_id,
        emergency_reason=emergency_reason,
        now=now,
    )
    return decide(question)


STALE_FACTS_ATTEMPTS = 3


def _decide_and_append(
    deps: Deps,
    uow: UnitOfWork,
    subject: Principal,
    patient_id: str,
    care_group_id: str,
    category: DataCategory,
    action: Action,
    now: dt.datetime,
    *,
    event: str,
    purpose: str = "",
    emergency_reason: str = "",
    access_point: str = "",
    record_holder_id: str = "",
    referral_target_id: str = "",
) -> tuple[Answer, AppendedEntry]:
    """Decides on the patient's cached facts and logs the decision in one statement that
    holds only if those facts are still current; if they changed meanwhile, reads them again
    and decides again. So a decision is never logged (or answered) on outdated facts."""
    for _ in range(STALE_FACTS_ATTEMPTS):
        facts = deps.directory.patient_facts(uow, patient_id)
        if facts is None:
            raise errors.PatientNotFound("patient not found")
        answer = _decide(
            deps,
            uow,
            subject,
            patient_id,
            care_group_id,
            category,
            action,
            now,
            facts,
            record_holder_id=record_holder_id,
            referral_target_id=referral_target_id,
            emergency_reason=emergency_reason,
        )
        entry = uow.repo.append_log(
            _log_entry(
                event=event,
                principal=subject,
                patient_id=patient_id,
                care_group_id=care_group_id,
                data_category=category,
                action=action,
                answer=answer,
                now=now,
                purpose=purpose,
                emergency_reason=emergency_reason,
                access_point=access_point,
            ),
            uow.log_stripe,
            facts.version,
        )
        if entry is not None:
            return answer, entry
        deps.directory.forget_facts(patient_id)
    raise Aborted(
        "the patient's care relationships or consents keep changing; retry",
        reason="FACTS_CHANGING",
    )


def _visible_patient(uow: UnitOfWork, principal: Principal, patient_id: str) -> Patient | None:
    """The patient, if it exists in the caller's care group. Another tenant's is invisible."""
    patient = uow.repo.patient(patient_id)
    if patient is None or patient.care_group_id != _care_group_of(principal):
        return None
    return patient


def _decide_and_log(
    deps: Deps,
    uow: UnitOfWork,
    principal: Principal,
    patient: Patient,
    category: DataCategory,
    action: Action,
    event: str,
    now: dt.datetime,
) -> Answer:
    """Decides, logs, and raises PERMISSION_DENIED on a denial (after committing the log)."""
    answer, _ = _decide_and_append(
        deps,
        uow,
        principal,
        patient.id,
        patient.care_group_id,
        category,
        action,
        now,
        event=event,
    )
    if not answer.permitted:
        uow.commit()
        raise errors.AccessDenied("access denied", reason=answer.reason)
    return answer


def authorize(deps: Deps, caller: Principal, data: AuthorizeInput) -> AuthorizeResult:
    """Decides one access and writes exactly one access-log entry for it."""
    v = Violations()
    if data.data_category is None:
        v.add("data_category", "is required", "DATA_CATEGORY_REQUIRED")
    if data.action is None:
        v.add("action", "is required", "ACTION_REQUIRED")
    if len(data.purpose) > 200:
        v.add("purpose", "at most 200 characters", "PURPOSE_TOO_LONG")
    if len(data.emergency_reason) > 1000:
        v.add("emergency_reason", "at most 1000 characters", "EMERGENCY_REASON_TOO_LONG")
    v.raise_if_any()
    assert data.data_category is not None and data.action is not None
    if data.subject is not None and not caller.is_service:
        raise errors.RoleNotPermitted(
            "only services may ask on behalf of another subject", reason="SUBJECT_NOT_ALLOWED"
        )
    subject = data.subject or caller
    access_point = data.access_point or caller.client_id
    now = deps.clock()
    # Reads (cached once warm), then one INSERT that is atomic on its own and checks the facts
    # the decision was taken on (see IdentityRepository.append_log).
    with deps.single_statement_uow() as uow:
        care_group_id = deps.directory.patient_care_group(uow, data.patient_id)
        if care_group_id is None or care_group_id != _care_group_of(subject):
            answer = Answer(Decision.DENY, Basis.NONE, "PATIENT_NOT_FOUND")
            _append_log(
                uow,
                _log_entry(
                    event="AUTHORIZE",
                    principal=subject,
                    patient_id=data.patient_id,
                    care_group_id=_care_group_of(subject),
                    data_category=data.data_category,
                    action=data.action,
                    answer=answer,
                    now=now,
                    purpose=data.purpose,
                    emergency_reason=data.emergency_reason,
                    access_point=access_point,
                ),
            )
            uow.commit()
            raise errors.PatientNotFound("patient not found")
        answer, entry = _decide_and_append(
            deps,
            uow,
            subject,
            data.patient_id,
            care_group_id,
            data.data_category,
            data.action,
            now,
            event="AUTHORIZE",
            purpose=data.purpose,
            emergency_reason=data.emergency_reason,
            access_point=access_point,
            record_holder_id=data.record_holder_id,
            referral_target_id=data.referral_target_id,
        )
        uow.commit()
        return AuthorizeResult(answer, entry.id, care_group_id)


MAX_BATCH = 1000


@dataclass(frozen=True)
class PatientDecision:
    patient_id: str
    answer: Answer
    sequence: int


def batch_authorize(
    deps: Deps, caller: Principal, patient_ids: Sequence[str], data: AuthorizeInput
) -> list[PatientDecision]:
    """``authorize`` for many patients in one transaction: one decision and one log entry each.

    Unknown patients and those of another care group are denied (PATIENT_NOT_FOUND) rather
    than failing the batch. Referral context and emergency access do not apply to batches.
    """
    v = Violations()
    if not patient_ids:
        v.add("patients", "name at least one patient", "PATIENTS_REQUIRED")
    if len(patient_ids) > MAX_BATCH:
        v.add("patients", f"at most {MAX_BATCH} patients", "TOO_MANY_PATIENTS")
    if data.data_category is None:
        v.add("data_category", "is required", "DATA_CATEGORY_REQUIRED")
    if data.action is None:
        v.add("action", "is required", "ACTION_REQUIRED")
    v.raise_if_any()
    assert data.data_category is not None and data.action is not None
    if data.subject is not None and not caller.is_service:
        raise errors.RoleNotPermitted(
            "only services may ask on behalf of another subject", reason="SUBJECT_NOT_ALLOWED"
        )
    subject = data.subject or caller
    access_point = data.access_point or caller.client_id
    now = deps.clock()
    results: list[PatientDecision] = []
    with deps.uow() as uow:
        for patient_id in dict.fromkeys(patient_ids):
            found = deps.directory.patient_care_group(uow, patient_id)
            if found is None or found != _care_group_of(subject):
                answer = Answer(Decision.DENY, Basis.NONE, "PATIENT_NOT_FOUND")
                care_group_id = _care_group_of(subject)
                entry = _append_log(
                    uow,
                    _log_entry(
                        event="AUTHORIZE",
                        principal=subject,
                        patient_id=patient_id,
                        care_group_id=care_group_id,
                        data_category=data.data_category,
                        action=data.action,
                        answer=answer,
                        now=now,
                        purpose=data.purpose,
                        access_point=access_point,
                    ),
                )
            else:
                answer, entry = _decide_and_append(
                    deps,
                    uow,
                    subject,
                    patient_id,
                    found,
                    data.data_category,
                    data.action,
                    now,
                    event="AUTHORIZE",
                    purpose=data.purpose,
                    access_point=access_point,
                    record_holder_id=data.record_holder_id,
                )
            results.append(PatientDecision(patient_id, answer, entry.id))
        uow.commit()
    return results


# ---------------------------------------------------------------- patients


def bsn_hash(pepper: bytes, bsn: str) -> str:
    return hmac.new(pepper, bsn.encode(), hashlib.sha256).hexdigest()


def _valid_bsn(bsn: str) -> str:
    normal = normalise_bsn(bsn)
    if normal is None:
        raise InvalidArgument.single("bsn", "must be 9 digits that pass the 11-test", "INVALID_BSN")
    return normal


def register_patient(
    deps: Deps, principal: Principal, bsn: str, patient_id: str = "", request_id: str = ""
) -> Patient:
    """Registers a patient by BSN in the caller's care group; the caller's organisation gets
    a care relationship (coordinating for a GP practice, treating otherwise)."""
    v = Violations()
    if normalise_bsn(bsn) is None:
        v.add("bsn", "must be 9 digits that pass the 11-test", "INVALID_BSN")
    if patient_id and not names.valid_id(patient_id):
        v.add("patient_id", "2-63 lower-case letters, digits and dashes", "INVALID_PATIENT_ID")
    v.raise_if_any()
    if not principal.roles & REGISTER_ROLES:
        raise errors.RoleNotPermitted("this role may not register patients")
    care_group_id = _care_group_of(principal)
    digest = bsn_hash(deps.bsn_pepper, _valid_bsn(bsn))
    now = deps.clock()
    with deps.uow() as uow:
        replay = _replayed(uow, principal, request_id, "RegisterPatient")
        if replay is not None:
            existing = uow.repo.patient(names.parse_one(replay, "patients"))
            if existing is None:
                raise errors.PatientNotFound("patient not found")
            return existing
        org = uow.repo.organisation(_org_id_of(principal))
        if org is None or org.care_group_id != care_group_id:
            raise errors.RoleNotPermitted("unknown organisation", reason="UNKNOWN_ORGANISATION")
        patient = uow.repo.patient_by_bsn_hash(care_group_id, digest)
        if patient is None:
            new_id = patient_id or uuid.uuid4().hex
            if uow.repo.patient(new_id) is not None:
                raise errors.PatientIdTaken("this patient id is taken")
            patient = Patient(
                id=new_id,
                care_group_id=care_group_id,
                bsn_hash=digest,
                create_time=now,
                update_time=now,
            )
            uow.repo.add(patient)
        if org.type != OrganisationType.CARE_GROUP and not any(
            r.active_at(now) for r in uow.repo.care_relationships(patient.id, org.id)
        ):
            kind = (
                RelationshipKind.COORDINATING
                if org.type == OrganisationType.GP_PRACTICE
                else RelationshipKind.TREATING
            )
            uow.repo.add(
                CareRelationship(
                    id=uuid.uuid4().hex,
                    patient_id=patient.id,
                    organisation_id=org.id,
                    kind=kind.value,
                    start_time=now,
                    create_time=now,
                )
            )
            uow.repo.facts_changed(patient.id)
        answer = Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, "REGISTRATION")
        _append_log(
            uow,
            _log_entry(
                event="REGISTER_PATIENT",
                principal=principal,
                patient_id=patient.id,
                care_group_id=care_group_id,
                data_category=DataCategory.PATIENT_RECORD,
                action=Action.CREATE,
                answer=answer,
                now=now,
            ),
        )
        _remember(uow, principal, request_id, "RegisterPatient", f"patients/{patient.id}")
        uow.commit()
        return patient


def get_patient(deps: Deps, principal: Principal, patient_id: str) -> Patient:
    now = deps.clock()
    with deps.uow() as uow:
        patient = _visible_patient(uow, principal, patient_id)
        if patient is None:
            raise errors.PatientNotFound("patient not found")
        _decide_and_log(
            deps,
            uow,
            principal,
            patient,
            DataCategory.PATIENT_RECORD,
            Action.READ,
            "GET_PATIENT",
            now,
        )
        uow.commit()
        return patient


def lookup_patient(deps: Deps, principal: Principal, bsn: str, purpose: str = "") -> Patient:
    normal = _valid_bsn(bsn)
    if not principal.roles & REGISTER_ROLES:
        raise errors.RoleNotPermitted("this role may not look patients up")
    now = deps.clock()
    with deps.uow() as uow:
        patient = uow.repo.patient_by_bsn_hash(
            _care_group_of(principal), bsn_hash(deps.bsn_pepper, normal)
        )
        if patient is None:
            raise errors.PatientNotFound("no patient with this BSN in the care group")
        _decide_and_log(
            deps,
            uow,
            principal,
            patient,
            DataCategory.PATIENT_RECORD,
            Action.READ,
            "LOOKUP_PATIENT",
            now,
        )
        uow.commit()
        return patient


# ---------------------------------------------------------------- care relationships


def _may_manage_relationships(
    uow: UnitOfWork, principal: Principal, patient: Patient, organisation_id: str, now: dt.datetime
) -> bool:
    """Care-group admins; an organisation for itself; the coordinating practice for any."""
    if principal.roles & ADMIN_ROLES and _care_group_of(principal) == patient.care_group_id:
        return True
    if not principal.roles & (
        RECORDING_ROLES | {"provider", "sport-coach", "municipality-officer"}
    ):
        return False
    own = _org_id_of(principal)
    if own == organisation_id:
        return True
    return any(
        r.kind == RelationshipKind.COORDINATING.value and r.active_at(now)
        for r in uow.repo.care_relationships(patient.id, own)
    )


def create_care_relationship(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    organisation_id: str,
    kind: RelationshipKind | None,
    start_time: dt.datetime | None,
    end_time: dt.datetime | None,
    request_id: str = "",
) -> CareRelationship:
    v = Violations()
    if kind is None:
        v.add("care_relationship.kind", "is required", "KIND_REQUIRED")
    if start_time and end_time and end_time <= start_time:
        v.add("care_relationship.end_time", "must be after start_time", "END_BEFORE_START")
    v.raise_if_any()
    assert kind is not None
    now = deps.clock()
    with deps.uow() as uow:
        replay = _replayed(uow, principal, request_id, "CreateCareRelationship")
        if replay is not None:
            p_id, rel_id = names.parse(replay, "patients", "careRelationships")
            rel = uow.repo.care_relationship(p_id, rel_id)
            if rel is None:
                raise errors.CareRelationshipNotFound("care relationship not found")
            return rel
        patient = _visible_patient(uow, principal, patient_id)
        if patient is None:
            raise errors.PatientNotFound("patient not found")
        org = uow.repo.organisation(organisation_id)
        if org is None or org.care_group_id != patient.care_group_id:
            raise InvalidArgument.single(
                "care_relationship.organisation", "unknown organisation", "UNKNOWN_ORGANISATION"
            )
        if org.type == OrganisationType.INSURER:
            raise InvalidArgument.single(
                "care_relationship.organisation",
                "insurers have no care relationships",
                "INSURER_NOT_ALLOWED",
            )
        allowed = _may_manage_relationships(uow, principal, patient, organisation_id, now)
        answer = (
            Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, "RELATIONSHIP_MANAGER")
            if allowed
            else Answer(Decision.DENY, Basis.NONE, "NOT_RELATIONSHIP_MANAGER")
        )
        _append_log(
            uow,
            _log_entry(
                event="CREATE_CARE_RELATIONSHIP",
                principal=principal,
                patient_id=patient.id,
                care_group_id=patient.care_group_id,
                data_category=DataCategory.PATIENT_RECORD,
                action=Action.CREATE,
                answer=answer,
                now=now,
            ),
        )
        if not allowed:
            uow.commit()
            raise errors.AccessDenied("access denied", reason=answer.reason)
        rel = CareRelationship(
            id=uuid.uuid4().hex,
            patient_id=patient.id,
            organisation_id=org.id,
            kind=kind.value,
            start_time=start_time or now,
            end_time=end_time,
            create_time=now,
        )
        uow.repo.add(rel)
        uow.repo.facts_changed(patient.id)
        _remember(
            uow,
            principal,
            request_id,
            "CreateCareRelationship",
            f"patients/{patient.id}/careRelationships/{rel.id}",
        )
        uow.commit()
        return rel


def list_care_relationships(
    deps: Deps, principal: Principal, patient_id: str, after: str | None, limit: int
) -> Page[CareRelationship]:
    now = deps.clock()
    with deps.uow() as uow:
        patient = _visible_patient(uow, principal, patient_id)
        if patient is None:
            raise errors.PatientNotFound("patient not found")
        _decide_and_log(
            deps,
            uow,
            principal,
            patient,
            DataCategory.PATIENT_RECORD,
            Action.READ,
            "LIST_CARE_RELATIONSHIPS",
            now,
        )
        items = uow.repo.care_relationships(patient.id, after=after, limit=limit + 1)
        uow.commit()
        return _page(items, limit, lambda item: item.id)


def end_care_relationship(
    deps: Deps, principal: Principal, patient_id: str, rel_id: str, end_time: dt.datetime | None
) -> CareRelationship:
    now = deps.clock()
    with deps.uow() as uow:
        patient = _visible_patient(uow, principal, patient_id)
        rel = uow.repo.care_relationship(patient_id, rel_id) if patient else None
        if patient is None or rel is None:
            raise errors.CareRelationshipNotFound("care relationship not found")
        if not _may_manage_relationships(uow, principal, patient, rel.organisation_id, now):
            raise errors.AccessDenied("access denied", reason="NOT_RELATIONSHIP_MANAGER")
        end = end_time or now
        if end <= rel.start_time:
            raise InvalidArgument.single("end_time", "must be after the start", "END_BEFORE_START")
        rel.end_time = end
        uow.repo.facts_changed(patient.id)
        _append_log(
            uow,
            _log_entry(
                event="END_CARE_RELATIONSHIP",
                principal=principal,
                patient_id=patient.id,
                care_group_id=patient.care_group_id,
                data_category=DataCategory.PATIENT_RECORD,
                action=Action.UPDATE,
                answer=Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, "RELATIONSHIP_MANAGER"),
                now=now,
            ),
        )
        uow.commit()
        return rel


# ---------------------------------------------------------------- consent


def _consent_access(
    deps: Deps,
    uow: UnitOfWork,
    principal: Principal,
    patient: Patient,
    action: Action,
    event: str,
    now: dt.datetime,
) -> None:
    """The patient manages their own consent; clinicians with a care relationship may record
    and read it for the patient. Logged either way, so the patient sees who asked."""
    if principal.is_patient or principal.roles & RECORDING_ROLES:
        _decide_and_log(deps, uow, principal, patient, DataCategory.CONSENT, action, event, now)
        return
    answer = Answer(Decision.DENY, Basis.NONE, "ROLE_NOT_PERMITTED")
    _append_log(
        uow,
        _log_entry(
            event=event,
            principal=principal,
            patient_id=patient.id,
            care_group_id=patient.care_group_id,
            data_category=DataCategory.CONSENT,
            action=action,
            answer=answer,
            now=now,
        ),
    )
    uow.commit()
    raise errors.AccessDenied("access denied", reason=answer.reason)


def _validate_consent(uow: UnitOfWork, data: ConsentInput, care_group_id: str) -> None:
    v = Violations()
    if data.data_category is None:
        v.add("consent.data_category", "is required", "DATA_CATEGORY_REQUIRED")
    for side, type_, org_id in (
        ("record_holder", data.record_holder_type, data.record_holder_id),
        ("requester", data.requester_type, data.requester_id),
    ):
        if type_ is None and not org_id:
            v.add(f"consent.{side}", "name a category or an organisation", "SELECTOR_REQUIRED")
        elif org_id:
            org = uow.repo.organisation(org_id)
            if org is None or org.care_group_id != care_group_id:
                v.add(
                    f"consent.{side}.organisation", "unknown organisation", "UNKNOWN_ORGANISATION"
                )
    if data.start_time and data.end_time and data.end_time <= data.start_time:
        v.add("consent.end_time", "must be after start_time", "END_BEFORE_START")
    v.raise_if_any()


def create_consent(
    deps: Deps, principal: Principal, patient_id: str, data: ConsentInput, request_id: str = ""
) -> Consent:
    now = deps.clock()
    with deps.uow() as uow:
        replay = _replayed(uow, principal, request_id, "CreateConsent")
        if replay is not None:
            p_id, c_id = names.parse(replay, "patients", "consents")
            existing = uow.repo.consent(p_id, c_id)
            if existing is None:
                raise errors.ConsentNotFound("consent not found")
            return existing
        patient = _visible_patient(uow, principal, patient_id)
        if patient is None:
            raise errors.PatientNotFound("patient not found")
        _validate_consent(uow, data, patient.care_group_id)
        _consent_access(deps, uow, principal, patient, Action.CREATE, "CREATE_CONSENT", now)
        assert data.data_category is not None
        consent = Consent(
            id=uuid.uuid4().hex,
            patient_id=patient.id,
            record_holder_type=None
            if data.record_holder_id
            else data.record_holder_type and data.record_holder_type.value,
            record_holder_id=data.record_holder_id or None,
            data_category=data.data_category.value,
            requester_type=None
            if data.requester_id
            else data.requester_type and data.requester_type.value,
            requester_id=data.requester_id or None,
            start_time=data.start_time or now,
            end_time=data.end_time,
            recorded_by=principal.responsible_user,
            version=1,
            create_time=now,
            update_time=now,
        )
        uow.repo.add(consent)
        uow.repo.facts_changed(patient.id)
        uow.repo.add(
            ConsentEvent(
                consent_id=consent.id,
                patient_id=patient.id,
                type="given",
                actor=principal.responsible_user,
                event_time=now,
            )
        )
        _remember(
            uow,
            principal,
            request_id,
            "CreateConsent",
            f"patients/{patient.id}/consents/{consent.id}",
        )
        uow.commit()
        return consent


def get_consent(deps: Deps, principal: Principal, patient_id: str, consent_id: str) -> Consent:
    now = deps.clock()
    with deps.uow() as uow:
        patient = _visible_patient(uow, principal, patient_id)
        consent = uow.repo.consent(patient_id, consent_id) if patient else None
        if patient is None or consent is None:
            raise errors.ConsentNotFound("consent not found")
        _consent_access(deps, uow, principal, patient, Action.READ, "GET_CONSENT", now)
        uow.commit()
        return consent


def list_consents(
    deps: Deps, principal: Principal, patient_id: str, after: str | None, limit: int
) -> Page[Consent]:
    now = deps.clock()
    with deps.uow() as uow:
        patient = _visible_patient(uow, principal, patient_id)
        if patient is None:
            raise errors.PatientNotFound("patient not found")
        _consent_access(deps, uow, principal, patient, Action.READ, "LIST_CONSENTS", now)
        items = uow.repo.consents(patient.id, after=after, limit=limit + 1)
        uow.commit()
        return _page(items, limit, lambda item: item.id)


def withdraw_consent(
    deps: Deps, principal: Principal, patient_id: str, consent_id: str, etag: str = ""
) -> Consent:
    now = deps.clock()
    with deps.uow() as uow:
        patient = _visible_patient(uow, principal, patient_id)
        consent = uow.repo.consent(patient_id, consent_id) if patient else None
        if patient is None or consent is None:
            raise errors.ConsentNotFound("consent not found")
        _consent_access(deps, uow, principal, patient, Action.UPDATE, "WITHDRAW_CONSENT", now)
        if etag and etag != consent.etag:
            uow.commit()
            raise errors.EtagMismatch("the consent has changed; read it again")
        if consent.withdraw_time is not None:
            uow.commit()
            raise errors.ConsentAlreadyWithdrawn("the consent was already withdrawn")
        consent.withdraw_time = now
        consent.version += 1
        consent.update_time = now
        uow.repo.facts_changed(patient.id)
        uow.repo.add(
            ConsentEvent(
                consent_id=consent.id,
                patient_id=patient.id,
                type="withdrawn",
                actor=principal.responsible_user,
                event_time=now,
            )
        )
        uow.commit()
        return consent


def list_consent_events(
    deps: Deps, principal: Principal, patient_id: str, after: int, limit: int
) -> Page[ConsentEvent]:
    now = deps.clock()
    with deps.uow() as uow:
        patient = _visible_patient(uow, principal, patient_id)
        if patient is None:
            raise errors.PatientNotFound("patient not found")
        _consent_access(deps, uow, principal, patient, Action.READ, "LIST_CONSENT_EVENTS", now)
        items = uow.repo.consent_events(patient.id, after, limit + 1)
        uow.commit()
        return _page(items, limit, lambda item: item.id)


# ---------------------------------------------------------------- reading and verifying the log


def list_access_log(
    deps: Deps, principal: Principal, patient_id: str, after: int, limit: int
) -> Page[AccessLogEntry]:
    """A patient lists their own entries; an auditor any in the care group. Reading is logged."""
    now = deps.clock()
    care_group_id = _care_group_of(principal)
    with deps.uow() as uow:
        if patient_id:
            patient = _visible_patient(uow, principal, patient_id)
            if patient is None:
                raise errors.PatientNotFound("patient not found")
            allowed = (principal.is_patient and principal.patient == f"patients/{patient.id}") or (
                "auditor" in principal.roles
            )
        else:
            allowed = "auditor" in principal.roles
        answer = (
            Answer(
                Decision.PERMIT, Basis.SELF if principal.is_patient else Basis.AUDIT, "LOG_READER"
            )
            if allowed
            else Answer(Decision.DENY, Basis.NONE, "NOT_LOG_READER")
        )
        _append_log(
            uow,
            _log_entry(
                event="LIST_ACCESS_LOG",
                principal=principal,
                patient_id=patient_id or "*",
                care_group_id=care_group_id,
                data_category=DataCategory.ACCESS_LOG,
                action=Action.READ,
                answer=answer,
                now=now,
            ),
        )
        uow.commit()
        if not allowed:
            raise errors.AccessDenied("access denied", reason=answer.reason)
        items = uow.repo.access_log(
            patient_id=patient_id or None, care_group_id=care_group_id, after=after, limit=limit + 1
        )
        return _page(items, limit, lambda item: item.id)


def verify_access_log(deps: Deps, principal: Principal) -> Verification:
    """Checks every stripe's keyed chain and every published checkpoint (see
    identity.access_log_verify)."""
    if not principal.roles & VERIFY_ROLES:
        raise errors.RoleNotPermitted("only auditors may verify the access log")
    with deps.uow() as uow:
        return access_log_verify.verify(uow.repo, deps.log_trust())
