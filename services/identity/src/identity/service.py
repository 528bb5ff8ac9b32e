"""The identity use cases, as plain functions over a unit of work.

Every function takes the verified :class:`~servicekit.auth.Principal`. Every read or write
of patient data passes through :func:`_decide_and_log`, which applies the decision table
of :mod:`identity.policy` and appends one access-log entry in the same transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NoReturn, Protocol, TypeVar

from identity import access_log_verify, asking, errors, people
from identity.access_log import AccessLogTrust
from identity.access_log_verify import Verification
from identity.models import (
    AccessLogEntry,
    Action,
    AppendedEntry,
    CareRelationship,
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
from identity.policy import Answer, Basis, Decision, Question, decide, decide_unknown_patient
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

    # The client id of the referral service's account: the only caller whose referral
    # context (the Mitz referral exception) Authorize believes.
    referral_service_client_id: str = "svc-referral"

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


def _keyed_fingerprint(deps: Deps, fingerprint: str) -> str:
    """The stored form of a request's fingerprint: keyed, because a RegisterPatient request
    carries a BSN, and a plain hash of a 9-digit number is no secret."""
    return hmac.new(deps.bsn_pepper, fingerprint.encode(), hashlib.sha256).hexdigest()


def _replayed(
    deps: Deps,
    uow: UnitOfWork,
    principal: Principal,
    request_id: str,
    method: str,
    fingerprint: str,
) -> str | None:
    """The name the first request with this id created, None for a new request; the same id
    with another method or another request is INVALID_ARGUMENT REQUEST_ID_REUSED."""
    if not request_id:
        return None
    idempotency.check(request_id)
    record = uow.repo.request_record(principal.subject, request_id)
    return idempotency.replayed(record, method, _keyed_fingerprint(deps, fingerprint))


def _remember(
    deps: Deps,
    uow: UnitOfWork,
    principal: Principal,
    request_id: str,
    method: str,
    name: str,
    fingerprint: str,
) -> None:
    if request_id:
        uow.repo.add(
            RequestRecord(
                caller=principal.subject,
                request_id=request_id,
                method=method,
                fingerprint=_keyed_fingerprint(deps, fingerprint),
                resource_name=name,
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
    fingerprint: str = "",
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
        replay = _replayed(deps, uow, principal, request_id, "CreateOrganisation", fingerprint)
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
        _remember(
            deps, uow, principal, request_id, "CreateOrganisation", names_org(org.id), fingerprint
        )
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
    known: bool = True,
) -> Answer:
    """The decision table's answer; ``known=False`` for a patient identity does not know in
    the subject's care group (see :func:`decide_unknown_patient`). An empty record holder
    stays unnamed: the table reads it as the subject's own, except for measurements."""
    org_id = _org_id_of(subject)
    organisation = deps.directory.organisation(uow, org_id) if org_id else None
    record_holder = organisation if record_holder_id else None
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
    return decide(question) if known else decide_unknown_patient(question)


NO_FACTS = PatientFacts(0, (), ())


def _unknown_patient_answer(
    deps: Deps,
    uow: UnitOfWork,
    subject: Principal,
    patient_id: str,
    category: DataCategory,
    action: Action,
    now: dt.datetime,
    *,
    record_holder_id: str = "",
    emergency_reason: str = "",
) -> Answer:
    """The answer for a patient identity does not know in the subject's care group (none
    such, or another care group's): what a patient without any relationship or consent
    gets, so that no answer tells whether a patient exists."""
    return _decide(
        deps,
        uow,
        subject,
        patient_id,
        _care_group_of(subject),
        category,
        action,
        now,
        NO_FACTS,
        record_holder_id=record_holder_id,
        emergency_reason=emergency_reason,
        known=False,
    )


def _refuse(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    care_group_id: str,
    category: DataCategory,
    action: Action,
    event: str,
    now: dt.datetime,
    reason: str,
) -> NoReturn:
    """Logs a refused attempt (NEN 7513 logs those too), commits, and raises
    PERMISSION_DENIED with ``reason`` and a message that is the same for every patient."""
    _append_log(
        uow,
        _log_entry(
            event=event,
            principal=principal,
            patient_id=patient_id,
            care_group_id=care_group_id,
            data_category=category,
            action=action,
            answer=Answer(Decision.DENY, Basis.NONE, reason),
            now=now,
        ),
    )
    uow.commit()
    raise errors.AccessDenied("access denied", reason=reason)


def _refuse_unknown_patient(
    deps: Deps,
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    category: DataCategory,
    action: Action,
    event: str,
    now: dt.datetime,
) -> NoReturn:
    """The refusal for a patient the caller cannot see because identity does not know it in
    the caller's care group: the same error, and the same log entry, as for a patient who
    exists without any relationship to the caller."""
    answer = _unknown_patient_answer(deps, uow, principal, patient_id, category, action, now)
    _refuse(
        uow,
        principal,
        patient_id[:128],
        _care_group_of(principal),
        category,
        action,
        event,
        now,
        answer.reason,
    )


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
    refine: Callable[[Answer], Answer] | None = None,
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
        if refine is not None:
            answer = refine(answer)
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


def _admit(
    deps: Deps,
    uow: UnitOfWork,
    principal: Principal,
    patient: Patient | None,
    log_patient_id: str,
    category: DataCategory,
    action: Action,
    event: str,
    now: dt.datetime,
) -> Patient:
    """``patient`` once the table permits the access (one log entry either way); a patient
    identity does not know in the caller's care group (None) is refused exactly like one
    without a relationship, logged under ``log_patient_id``."""
    if patient is None:
        _refuse_unknown_patient(deps, uow, principal, log_patient_id, category, action, event, now)
    _decide_and_log(deps, uow, principal, patient, category, action, event, now)
    return patient


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
    *,
    refine: Callable[[Answer], Answer] | None = None,
) -> Answer:
    """Decides, logs, and raises PERMISSION_DENIED on a denial (after committing the log).
    ``refine`` may turn the table's answer into a denial before it is logged (a rule of the
    use case on top of the table), so that the one entry logged is the real outcome."""
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
        refine=refine,
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
    _check_asker(deps, caller, data)
    data = _as_asked(caller, data)
    assert data.data_category is not None and data.action is not None
    subject = data.subject or caller
    access_point = data.access_point or caller.client_id
    now = deps.clock()
    # Reads (cached once warm), then one INSERT that is atomic on its own and checks the facts
    # the decision was taken on (see IdentityRepository.append_log).
    with deps.single_statement_uow() as uow:
        acting = people.act_for(uow, subject)
        care_group_id = deps.directory.patient_care_group(uow, data.patient_id)
        if acting is None or care_group_id is None or care_group_id != _care_group_of(subject):
            # A delegate naming nobody it may act for, or a patient identity does not know
            # in the subject's care group: answered (and logged) like any other denial.
            answer = (
                Answer(Decision.DENY, Basis.NONE, ON_BEHALF_OF_NOT_ALLOWED)
                if acting is None
                else _unknown_patient_answer(
                    deps,
                    uow,
                    acting,
                    data.patient_id,
                    data.data_category,
                    data.action,
                    now,
                    record_holder_id=data.record_holder_id,
                    emergency_reason=data.emergency_reason,
                )
            )
            entry = _append_log(
                uow,
                _log_entry(
                    event="AUTHORIZE",
                    principal=acting or subject,
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
            return AuthorizeResult(answer, entry.id, _care_group_of(subject))
        answer, entry = _decide_and_append(
            deps,
            uow,
            acting,
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
            refine=_holder_claim(deps, uow, caller, data),
        )
        uow.commit()
        return AuthorizeResult(answer, entry.id, care_group_id)


ON_BEHALF_OF_NOT_ALLOWED = "ON_BEHALF_OF_NOT_ALLOWED"


def _check_asker(deps: Deps, caller: Principal, data: AuthorizeInput) -> None:
    """Only services ask for another subject, and only the referral service's account names
    a referral context: context that widens access is believed only from the service that
    owns the fact (anyone else is refused, never silently decided without it)."""
    if data.subject is not None and not caller.is_service:
        raise errors.RoleNotPermitted(
            "only services may ask on behalf of another subject", reason="SUBJECT_NOT_ALLOWED"
        )
    if (data.referral_id or data.referral_target_id) and not (
        caller.is_service and caller.client_id == deps.referral_service_client_id
    ):
        raise errors.ContextNotTrusted("only the referral service may name a referral context")


def _as_asked(caller: Principal, data: AuthorizeInput) -> AuthorizeInput:
    """What is believed of a question from a caller that is not a platform service (see
    identity.asking): its own client id as the access point, a purpose of the vocabulary
    or none."""
    if caller.is_service:
        return data
    return dataclasses.replace(
        data, access_point=caller.client_id, purpose=asking.purpose_of(data.purpose)
    )


def _holder_claim(
    deps: Deps, uow: UnitOfWork, caller: Principal, data: AuthorizeInput
) -> Callable[[Answer], Answer] | None:
    """For a caller that is not a platform service: a PERMIT that rests on holding the
    record itself stands only for a category its type of organisation produces."""
    if caller.is_service or data.data_category is None:
        return None
    category = data.data_category
    own_id = _org_id_of(caller)
    if data.record_holder_id and data.record_holder_id != own_id:
        return None
    own = deps.directory.organisation(uow, own_id) if own_id else None

    def refine(answer: Answer) -> Answer:
        if (
            answer.basis is Basis.CARE_RELATIONSHIP
            and own is not None
            and not asking.may_hold(own.type, category)
        ):
            return Answer(Decision.DENY, Basis.NONE, asking.RECORD_HOLDER_NOT_PRODUCER)
        return answer

    return refine


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

    A patient identity does not know in the subject's care group is denied exactly like one
    without any care relationship. Referral context and emergency access do not apply to
    batches.
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
    _check_asker(deps, caller, data)
    data = _as_asked(caller, data)
    assert data.data_category is not None and data.action is not None
    subject = data.subject or caller
    access_point = data.access_point or caller.client_id
    now = deps.clock()
    results: list[PatientDecision] = []
    with deps.uow() as uow:
        acting = people.act_for(uow, subject)
        for patient_id in dict.fromkeys(patient_ids):
            found = deps.directory.patient_care_group(uow, patient_id)
            if acting is None or found is None or found != _care_group_of(subject):
                answer = (
                    Answer(Decision.DENY, Basis.NONE, ON_BEHALF_OF_NOT_ALLOWED)
                    if acting is None
                    else _unknown_patient_answer(
                        deps,
                        uow,
                        acting,
                        patient_id,
                        data.data_category,
                        data.action,
                        now,
                        record_holder_id=data.record_holder_id,
                    )
                )
                care_group_id = _care_group_of(subject)
                entry = _append_log(
                    uow,
                    _log_entry(
                        event="AUTHORIZE",
                        principal=acting or subject,
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
                    acting,
                    patient_id,
                    found,
                    data.data_category,
                    data.action,
                    now,
                    event="AUTHORIZE",
                    purpose=data.purpose,
                    access_point=access_point,
                    record_holder_id=data.record_holder_id,
                    refine=_holder_claim(deps, uow, caller, data),
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
    deps: Deps,
    principal: Principal,
    bsn: str,
    patient_id: str = "",
    request_id: str = "",
    *,
    fingerprint: str = "",
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
        replay = _replayed(deps, uow, principal, request_id, "RegisterPatient", fingerprint)
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
        if org.type != OrganisationType.CARE_GROUP:
            # Locks the patient's row first, so that two registrations of one patient by one
            # organisation cannot both add a relationship (see identity.relationships).
            uow.repo.facts_changed(patient.id)
        if org.type != OrganisationType.CARE_GROUP and not any(
            r.active_at(now) for r in uow.repo.care_relationships(patient.id, org.id)
        ):
            # The practice coordinates only a patient nobody coordinates yet (one
            # coordinator per patient); otherwise it treats.
            kind = (
                RelationshipKind.COORDINATING
                if org.type == OrganisationType.GP_PRACTICE
                and uow.repo.open_care_relationship(
                    patient.id, None, RelationshipKind.COORDINATING.value, now
                )
                is None
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
        _remember(
            deps,
            uow,
            principal,
            request_id,
            "RegisterPatient",
            f"patients/{patient.id}",
            fingerprint,
        )
        uow.commit()
        return patient


def get_patient(deps: Deps, principal: Principal, patient_id: str) -> Patient:
    """The patient, if the caller may see their registration (what of it the caller gets is
    identity.minimisation's rule)."""
    now = deps.clock()
    with deps.uow() as uow:
        patient = _visible_patient(uow, principal, patient_id)
        patient = _admit(
            deps,
            uow,
            principal,
            patient,
            patient_id,
            DataCategory.PATIENT_RECORD,
            Action.READ,
            "GET_PATIENT",
            now,
        )
        uow.commit()
        return patient


# The log's patient for an access to no one patient (a look-up of an unknown BSN, the whole
# care group's log).
UNNAMED_PATIENT = "*"


def lookup_patient(deps: Deps, principal: Principal, bsn: str, purpose: str = "") -> Patient:
    normal = _valid_bsn(bsn)
    if not principal.roles & REGISTER_ROLES:
        raise errors.RoleNotPermitted("this role may not look patients up")
    now = deps.clock()
    with deps.uow() as uow:
        patient = uow.repo.patient_by_bsn_hash(
            _care_group_of(principal), bsn_hash(deps.bsn_pepper, normal)
        )
        # Refused like a registered patient without a relationship: a look-up does not
        # tell whether a BSN is registered (RegisterPatient is the way to find out).
        patient = _admit(
            deps,
            uow,
            principal,
            patient,
            UNNAMED_PATIENT,
            DataCategory.PATIENT_RECORD,
            Action.READ,
            "LOOKUP_PATIENT",
            now,
        )
        uow.commit()
        return patient


# ------------------------------------------ care relationships and consent: see
# identity.relationships and identity.consents, which build on the helpers above.


# ---------------------------------------------------------------- reading and verifying the log


def list_access_log(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    after: int,
    limit: int,
    *,
    emergency_only: bool = False,
) -> Page[AccessLogEntry]:
    """A patient lists their own entries; an auditor any in the care group. Reading is logged.
    ``emergency_only``: only the flagged emergency accesses (the privacy officer's review).

    Whether the patient exists plays no part: a reader gets the entries of the caller's care
    group about that patient (none for a patient identity does not know there), anyone else
    is refused NOT_LOG_READER either way."""
    now = deps.clock()
    care_group_id = _care_group_of(principal)
    with deps.uow() as uow:
        if patient_id:
            allowed = (principal.is_patient and principal.patient == f"patients/{patient_id}") or (
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
                patient_id=patient_id or UNNAMED_PATIENT,
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
            patient_id=patient_id or None,
            care_group_id=care_group_id,
            after=after,
            limit=limit + 1,
            emergency_only=emergency_only,
        )
        return _page(items, limit, lambda item: item.id)


def verify_access_log(deps: Deps, principal: Principal) -> Verification:
    """Checks every stripe's keyed chain and every published checkpoint (see
    identity.access_log_verify)."""
    if not principal.roles & VERIFY_ROLES:
        raise errors.RoleNotPermitted("only auditors may verify the access log")
    with deps.uow() as uow:
        return access_log_verify.verify(uow.repo, deps.log_trust())
