"""The words of docs/authorization.md around the table (render.py puts them together)."""

from __future__ import annotations

INTRO = """
# Authorization: who sees what

This document is generated from `tests/authz/authorization_table.psv` by
`tests/authz/render.py`; do not edit it by hand. Every row below is also a test: the suite
`tests/authz` starts identity, referral, careplan and outcomes as real gRPC servers on real
ports, sets up the facts a row names through the public APIs, calls the RPC with a real
token from the test OIDC issuer and compares the gRPC code and the ErrorInfo reason (or the
Authorize decision) with the row. A test also reads the proto descriptors and fails when an
RPC whose request carries a patient has no row: a field named `patient`, `patients` or
`bsn`, a `name` or `parent` under `patients/`, or a patient resource, at any depth (the
`Subject` of a service's question says who asks, not whose data, and does not count).

Run it with `.venv/bin/pytest tests/authz -q -p no:cacheprovider`; after changing the table,
regenerate this file with `.venv/bin/python -m tests.authz.render`.
"""

RULES = """
## How to read a row

- **caller**: one of the callers above, with a real token of the test issuer (`kis` names
  the GP it acts for in `x-carenet-on-behalf-of`, `kis-system` names nobody).
- **relationship**: the care relationship of the caller's organisation with the patient:
  `none`, `active`, `ended` (yesterday), or `-` where a caller has none by nature (patients,
  insurers, the care group's own people, services; for a service, the columns describe the
  end user it asks for).
- **consent**: the patient's consent for the row's data category, from the record holder's
  type (GP practice) to the caller's organisation type: `none`, `given`, `withdrawn`,
  `other` (given for another data category only), or `-` where consent plays no part.
- **tenant**: the patient is in the caller's care group (`same`) or in another (`other`).
- **patient**: `self` (the caller's own record), `other` (an existing patient), or
  `nonexistent`.
- **case**: what else the row varies, `-` for the plain call (see each RPC's note).
- **expected**: `OK`; `<gRPC code> <ErrorInfo reason>`; `PERMIT <reason>` or `DENY <reason>`
  for Authorize's decision; `REJECTED <reason>` for an item refused inside an OK answer.
- **sees**: how much an OK answer shows, where a role sees less than everything.

## The facts behind the rows

All patients but one are in care group cg-zuidoost and were registered by the GP practice
gp-de-linde, which therefore has an active coordinating relationship with them and holds
their records: a care plan, two open referrals (to the lifestyle provider's GLI, `gli`, and
to the municipality's walking group, `walk`), a DM2 enrolment and an HbA1c measurement from
its KIS. The other organisations (gp-het-anker, hosp-catharina, gm-eindhoven,
gli-beweegfit) have the row's relationship with the patient, and the consents are recorded
from GP practices to the organisation types of all four. `p-0001` is the patient persona's
own record; a patient of care group cg-noord is the `other` tenant of the cg-zuidoost
callers, and a cg-zuidoost patient the `other` tenant of the cg-noord GP. For the
practice's own people, `relationship ended` is a patient whose relationship with the
practice itself has ended. Rows that would change the facts of others (registering,
recording or ending relationships) use a patient of their own, set up the same way.

## The rules

1. **Consent per data category for whoever does not hold the record** (Mitz, reference
   section 6). The organisation that holds a record (here the GP practice, for the care
   plan, its referrals, its measurements) reads it on an active care relationship alone.
   Any other organisation needs an active care relationship *and* a consent of the patient
   that covers record holder x data category x its own type, in force now: a withdrawn
   consent, or one for another data category, is no consent (`NO_CONSENT`); without an
   active relationship the answer is `NO_CARE_RELATIONSHIP`, consent or not. An ended
   relationship is no relationship, also for the record holder itself.
2. **Creating is not reading.** Creating a record (a referral, a care plan, an enrolment, a
   measurement) makes the creator its record holder, so a create needs the care relationship
   only. The RPC's own role rules (only clinicians refer, only a GP or practice nurse
   creates a care plan) are checked before identity is asked, since they do not depend on
   the patient. Where a create finds the record already there, a permitted caller gets the
   conflict (`ALREADY_EXISTS`), which is what the rows use to show a permit without
   writing.
3. **The referral exception** (Mitz): the organisation a referral is addressed to reads and
   updates *that referral* without a care relationship or consent, and lists its referrals
   of the patient. It applies only to referral data, and identity believes a referral
   context only from the referral service's own account (`CONTEXT_NOT_TRUSTED` from anyone
   else). Being allowed to see the patient's referral data does not make an organisation a
   party to a referral it is neither the referrer nor the target of: reading or changing
   it (`GetReferral`, `TransitionReferral`, `RecordReferralOutcome`), such a caller is
   answered as for a referral that does not exist (`NOT_FOUND REFERRAL_NOT_FOUND`) before
   identity is asked, so nothing is logged for a read or a change that does not happen.
4. **Insurers never read patient data** (`INSURER_NO_PATIENT_DATA`), whatever relationship
   or consent; they get aggregates from outcomes only.
5. **Patients** read their own record (`OWN_DATA`) and nobody else's (`NOT_OWN_DATA`). A
   patient reaches no enrolment or measurement RPC: the patient app is not a client of
   outcomes (its tokens carry no outcomes audience: `UNAUTHENTICATED WRONG_AUDIENCE`), and a
   patient signed in through another client (the KIS or web client, whose tokens do carry
   it) is refused by role (`PERMISSION_DENIED ROLE_NOT_PERMITTED`) before identity is asked,
   so nothing is read or logged.
6. **The care group's own people** (admin, auditor) read no patient data
   (`ROLE_NOT_PERMITTED`); the admin manages organisations and care relationships, the
   auditor reads the access log. Only the patient and an auditor read a patient's access
   log (`NOT_LOG_READER` for everyone else).
7. **A patient who does not exist answers like one the caller may not see.** Nobody learns
   from an answer whether a patient exists in their care group: a nonexistent patient, and
   a patient of another care group, are decided as a patient who exists and has no care
   relationship or consent with anyone, so a care role gets `NO_CARE_RELATIONSHIP`, a
   patient `NOT_OWN_DATA`, an insurer `INSURER_NO_PATIENT_DATA`, with the same code, message
   and ErrorInfo as for an existing patient (a test compares them exactly). The same holds
   for a look-up by BSN. An `Authorize` question about such a patient is answered with a
   DENY like any other, not NOT_FOUND. The same holds for a care plan: a patient without a
   plan is decided as the plan would be if it existed, held by the patient's coordinating
   practice (which alone creates and holds it), so a professional without the consent a
   plan needs gets `NO_CONSENT` whether or not there is a plan, and only the practice that
   would hold it learns there is none (`NOT_FOUND`, after a permitted read of its own
   record).
8. **Minimisation: each role sees the least it needs.** `GetPatient`: clinicians and the
   patient get the whole resource, a lifestyle provider, sport coach or municipality
   officer the name and care group only. `ListCareRelationships`: the patient and the
   coordinating practice see all relationships, another clinician its own organisation's
   and the coordinating one, a non-clinical role only its own organisation's.
   `ListReferrals` and `WatchReferralEvents` show a caller only the referrals it is a party
   to. Consents are read and recorded by the patient and by clinicians with an active care
   relationship, never by non-clinical roles (`ROLE_NOT_PERMITTED`).
9. **Acting for someone** (`x-carenet-on-behalf-of`): only a system client registered for
   its organisation (the realm role `delegate`, here the practice's KIS) may name the person
   it acts for, and only a person of that same organisation; it then gets exactly that
   person's answers. The header on a person's own token, or naming a person of another
   organisation, is refused (`ON_BEHALF_OF_NOT_ALLOWED`).
10. **Emergency access** (break the glass) is for clinicians (`EMERGENCY_NOT_PERMITTED` for
    other roles) with a real reason (`EMERGENCY_REASON_INSUFFICIENT` for "urgent"); it is
    used only when nothing else would permit, and is flagged in the log.
11. **Measurements are decided on their record holder.** A question about reading
    measurements that does not name their holder is refused (`RECORD_HOLDER_REQUIRED`),
    never decided as if the asker held them. A read of a patient's measurements (or
    enrolments) is one access per record holder whose records it reaches for, the caller's
    own organisation's first: one decision and one log entry each, saying whether that
    holder's records were read or withheld (`NO_CONSENT`). A refusal that is the same for
    every holder (`NO_CARE_RELATIONSHIP`, a role) ends the read at the first: one entry. A
    source record id is its record holder's own (unique per holder and source), so an
    ingest never learns, or takes, another organisation's ids; a row rejected before
    anything is created (`SOURCE_RECORD_CONFLICT`) is no create and is not logged as one.
12. **A system acting as itself** (a delegate client naming nobody, here the practice's KIS,
    `kis-system`) reads the referral data of its own organisation, as the organisation's
    clinicians would: the referrals it made, on the practice's active care relationship, and
    those addressed to it (the referral exception). So it lists and follows them
    (`ListReferrals`, `WatchReferralEvents`), each patient or referral decided and logged
    with the client as user and access point. Nothing else: no other organisation's
    referrals, no other data category and no write (`ROLE_NOT_PERMITTED`); reading or
    changing one referral, and referring, need a person it acts for: `GetReferral`,
    `TransitionReferral` and `RecordReferralOutcome` refuse it by its role
    (`ROLE_NOT_PERMITTED`) before identity is asked, as they refuse the insurer, the admin
    and the auditor, who are no party to any referral.

## Where the rules were silent

What a data-protection officer of a care group would expect, and the table holds:

- The patient record (`GetPatient`, `ListCareRelationships`, look-up by BSN) is
  identity's own registration, not a record of another organisation: an active care
  relationship is enough, no consent is asked; minimisation (rule 8) limits what it shows.
- A treatment relationship is the care provider's own claim, checked afterwards through
  the log (as in Dutch practice): a clinical role (GP, practice nurse, specialist) of a
  care-providing organisation (a GP practice or a hospital) may declare its own
  organisation's relationship with a patient of its care group, directly or by registering
  the patient's BSN; the coordinating practice records one for another care-providing
  organisation; the care group's admin records any. Lifestyle providers, sport coaches and
  municipality officers declare nothing (`NOT_RELATIONSHIP_MANAGER`): they reach a patient
  through the referrals addressed to them (rule 3), or through a relationship the admin
  records. Every recording is an entry of the patient's access log as what happened
  (`CREATE_CARE_RELATIONSHIP`, or `REGISTER_PATIENT` for a new patient): the recorder as
  user and organisation, the reason `SELF_DECLARED`, `RECORDED_BY_ADMIN` or
  `RECORDED_BY_COORDINATOR`, and the purpose naming the relationship recorded, so the
  patient sees it on the Privacy page and the auditor can list the self-declared ones. A
  second open relationship of the same kind is refused (`ALREADY_EXISTS
  CARE_RELATIONSHIP_EXISTS`).
- A patient id is chosen by the server (128 random bits) unless the care group's admin
  chooses it; anyone else naming one is refused (`PERMISSION_DENIED
  PATIENT_ID_NOT_PERMITTED`) before anything is looked up, so a chosen id never tells
  whether a patient exists. The admin choosing a taken id gets `ALREADY_EXISTS
  PATIENT_ID_TAKEN`, logged.
- The referral target lists the referrals addressed to it even without a care relationship
  (rule 3): what it may read one by one it may list.
- Permission is checked before state: a caller who may not see a referral, plan or consent
  learns nothing of its state, etag or existence (`PERMISSION_DENIED` comes before
  `FAILED_PRECONDITION`, `ABORTED` and `ALREADY_EXISTS`).
- For the care group's auditor, who may read every patient's access log, a patient of
  another care group and a nonexistent one both have an empty log (`OK`, no entries).
- Relationship management is refused for a patient identity does not know exactly as for
  one the caller does not manage (`NOT_RELATIONSHIP_MANAGER`), also for the admin; an
  unknown patient is never `NOT_FOUND`. Ending a relationship the patient does not have is
  refused the same way (same code, message and ErrorInfo, logged), also for the admin.
- Emergency access tells an existing patient from an unknown one, by design: a clinician
  with a real reason gets `PERMIT EMERGENCY` for a patient who exists, and `DENY
  NO_CARE_RELATIONSHIP` for one identity does not know (rule 7's answer). Break the glass
  has to work for the patient in front of the clinician, and a permit for a patient who does
  not exist would be a false entry and would be given away by the read that follows. The
  difference costs the prober what break the glass always costs: each permit is an entry
  flagged as an emergency in that patient's log, under the clinician's name and declared
  reason, shown to the patient and listed for the privacy officer's review
  (`ListAccessLogEntries` `emergency_only`); each denial is logged too. Patient ids are
  random, so they cannot be enumerated.
- Roles that may never do what an RPC does are refused by the RPC before identity is asked
  (`ROLE_NOT_PERMITTED`: a specialist, a non-clinical role, an insurer or a patient creating
  a care plan; anyone but a clinician referring; a non-clinical role reading consents or
  looking up a BSN); that answer does not depend on the patient either.
- `Authorize` answers a question it cannot pose with `INVALID_ARGUMENT`, not a decision: a
  record holder the caller's care group does not know (`UNKNOWN_RECORD_HOLDER`). A delegate
  naming a person of another organisation is a decision, `DENY ON_BEHALF_OF_NOT_ALLOWED`,
  logged like any other; the other RPCs refuse it with `PERMISSION_DENIED` and that reason.
"""

CALLS = {
    "identity.GetPatient": "The patient resource; `sees` says whether the create and update "
    "times were left out.",
    "identity.LookupPatient": "A look-up by the patient's BSN (`nonexistent`: a valid BSN "
    "nobody registered).",
    "identity.RegisterPatient": "`other`: the BSN of a patient the practice registered (a "
    "patient of the row's own, since registering adds the caller's relationship); "
    "`nonexistent`: a BSN nobody registered. `chosen-id`: a new BSN with a patient id the "
    "caller chose, the id of an existing patient (`other`) or a free one (`nonexistent`).",
    "identity.CreateCareRelationship": "An open treating relationship, on a patient of the "
    "row's own, for the caller's organisation (`for-own`), the hospital (`for-hospital`) or "
    "the lifestyle provider (`for-provider`).",
    "identity.EndCareRelationship": "Ends the hospital's (`of-hospital`) or the caller's "
    "own (`of-own`) active relationship with a patient of the row's own; `missing`: a "
    "relationship that patient does not have.",
    "identity.ListCareRelationships": "`sees`: `all` of the patient's relationships, or "
    "which of them: the caller's `own` organisation's, the `coordinating` practice's.",
    "identity.CreateConsent": "A consent that counts for nothing in the table (measurements "
    "to insurers). Only the patient and the coordinating practice record consent: another "
    "organisation with a relationship gets `CONSENT_RECORDER_NOT_ALLOWED`.",
    "identity.GetConsent": "",
    "identity.ListConsents": "",
    "identity.ListConsentEvents": "",
    "identity.WithdrawConsent": "With a stale etag: a permitted caller gets `ABORTED "
    "ETAG_MISMATCH` and nothing is withdrawn. Only the patient and the coordinating practice "
    "withdraw consent: another organisation gets `CONSENT_RECORDER_NOT_ALLOWED`.",
    "identity.Authorize": "Called by the caller for itself: may it read the care plan the "
    "practice holds. Cases: `emergency` / `vague-emergency` add an emergency reason that is a "
    "real one / that is not; `measurements-no-holder` asks about measurements without naming "
    "their holder; `end-user-context` is an end user claiming a referral context that names "
    "its own organisation as the target; `end-user-subject` an end user naming another "
    "subject; `for-provider+context` a service asking for the lifestyle provider with the "
    "context of the GLI referral addressed to it; `for-provider` the same without a context.",
    "identity.BatchAuthorize": "One patient: may the caller read the care plan the practice holds.",
    "identity.ListAccessLogEntries": "The patient's entries (oldest first, or newest first "
    "with `order_by` `event_time desc`, as the patient's Privacy page reads them).",
    "referral.CreateReferral": "Refers the patient to the GLI again: a permitted clinician "
    "of the practice gets its open referral's conflict, nothing is created; one of another "
    "organisation gets a referral of its own (one open referral per referring organisation, "
    "so the practice's is never revealed to it). The role, the offer and the "
    "request_id are checked before identity is asked (none of them depends on the patient): "
    "the GLI is an offer of cg-zuidoost, unknown to the other care group's GP.",
    "referral.GetReferral": "`to-caller`: the referral addressed to the caller's "
    "organisation; `to-other`: one that is not; the referrer's people and the patient use the "
    "GLI referral.",
    "referral.ListReferrals": "`sees`: which of the patient's two referrals were listed.",
    "referral.TransitionReferral": "requested -> in-progress, which the status machine does "
    "not allow: a party gets `FAILED_PRECONDITION INVALID_TRANSITION` and nothing changes.",
    "referral.RecordReferralOutcome": "Feedback on a referral that is still requested: the "
    "target gets `FAILED_PRECONDITION OUTCOME_NOT_ALLOWED_IN_STATE`, another party "
    "`TRANSITION_NOT_ALLOWED_FOR_PARTY`.",
    "referral.WatchReferralEvents": "The events of the patient (replay only), each decided "
    "by identity as it is delivered (one log entry per event); `sees`: which referrals they "
    "were about.",
    "careplan.CreateCarePlan": "The patient has a plan: a GP or practice nurse of the "
    "coordinating practice who may read it gets `ALREADY_EXISTS`; any other organisation "
    "gets `NOT_COORDINATING_PRACTICE` before anything is written. For the practice holding "
    "the plan the one access, and the one entry logged, is the read of that plan (nothing "
    "is created); its clinician whose relationship ended is answered as for a patient "
    "without a plan.",
    "careplan.GetCarePlan": "",
    "careplan.ListCarePlanRevisions": "",
    "careplan.UpdateCarePlan": "A progress entry with a stale etag: a permitted caller gets "
    "`ABORTED ETAG_MISMATCH` and the plan does not change.",
    "careplan.CreateGoal": "One goal with a stale etag: a caller who may write goals gets "
    "`ABORTED ETAG_MISMATCH` and the plan does not change. Item-level edits are asked about "
    "and ruled like `UpdateCarePlan` of their group.",
    "careplan.UpdateGoal": "The same, changing a goal.",
    "careplan.DeleteGoal": "The same, removing a goal.",
    "careplan.CreateAction": "One action with a stale etag: professionals may write actions "
    "(`ABORTED ETAG_MISMATCH`), the patient may not (`FIELD_GROUP_NOT_WRITABLE`).",
    "careplan.UpdateAction": "The same, changing an action.",
    "careplan.DeleteAction": "The same, removing an action.",
    "careplan.CreateEvaluationMoment": "One evaluation moment with a stale etag: only the "
    "coordinating practice writes them (`ABORTED ETAG_MISMATCH`), any other permitted caller "
    "gets `FIELD_GROUP_NOT_WRITABLE`.",
    "careplan.UpdateEvaluationMoment": "The same, changing an evaluation moment.",
    "careplan.DeleteEvaluationMoment": "The same, removing an evaluation moment.",
    "outcomes.CreateEnrolment": "The practice's DM2 enrolment, sent again: a permitted caller "
    "gets it back.",
    "outcomes.BatchCreateEnrolments": "The same, as a batch of one.",
    "outcomes.IngestMeasurements": "The practice's HbA1c row, sent again (a duplicate for a "
    "permitted caller).",
    "outcomes.ListEnrolments": "",
    "outcomes.ListMeasurements": "`sees`: whose measurements were listed, by record holder "
    "(the organisation that submitted them): the `practice`'s, the `hospital`'s. Case "
    "`two-holders`: a patient with measurements of both, who consented to hospitals' "
    "measurements reaching GP practices and not the other way round (the consent column of "
    "those rows).",
}
