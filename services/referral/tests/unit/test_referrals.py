"""Referral use cases against fakes: create, idempotency, duplicates, capacity and the
waitlist, feedback, history, the outbox, and one Authorize per patient-data use case."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import grpc
import pytest

from referral import errors
from referral.deps import Deps
from referral.models import BusinessStatus, Enrolment, Status
from referral.use_cases import events, offers, referrals, transitions
from servicekit.auth import Principal
from servicekit.errors import DomainError, InvalidArgument
from servicekit.paging import PageRequest
from testkit.fakes import FakeIdentity

from ..fakes import (
    CAREPLAN,
    COACH,
    GP,
    INSURER,
    KIS,
    NOORD_GP,
    NURSE,
    OTHER_GP,
    OTHER_PATIENT,
    PATIENT,
    PROVIDER,
    Clock,
    fake_deps,
)
from .helpers import listed_offer, outbox, refer


@pytest.fixture
def identity() -> FakeIdentity:
    return FakeIdentity()


@pytest.fixture
def deps(identity: FakeIdentity) -> Deps:
    deps = fake_deps(identity)
    listed_offer(deps, "gli", total_places=1)
    return deps


def test_a_gp_refers_a_patient_and_the_referral_is_requested_from_the_offer_owner(
    deps: Deps, identity: FakeIdentity
) -> None:
    view = refer(deps)
    r = view.referral
    assert r.status == "requested"
    assert (r.referrer_org_id, r.target_org_id) == ("gp-de-linde", "gli-beweegfit")
    assert r.eligibility == {"eligible": True, "outcomes": []}  # the offer has no rule
    assert [h.kind for h in view.history] == ["CREATED"]
    assert [c.access.value for c in identity.questions] == ["create"]


def test_a_retried_create_with_the_same_request_id_returns_the_first_referral(
    deps: Deps,
) -> None:
    first = refer(deps, request_id="kis-1")
    again = refer(deps, request_id="kis-1")
    assert again.referral.id == first.referral.id
    assert len([e for e in outbox(deps) if e["type"] == "created"]) == 1


def test_a_request_id_reused_for_another_request_is_refused_and_returns_nothing(
    deps: Deps,
) -> None:
    listed_offer(deps, "walk", owner=COACH)
    refer(deps, "p-0002", "gli", request_id="kis-2", fingerprint="fp-p-0002-gli")
    with pytest.raises(InvalidArgument) as caught:
        refer(deps, "p-0001", "walk", request_id="kis-2", fingerprint="fp-p-0001-walk")
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert [v.field for v in caught.value.violations] == ["request_id"]
    assert [e["patient"] for e in outbox(deps)] == ["patients/p-0002"]


def test_a_second_open_referral_for_the_same_patient_and_offer_names_the_existing_one(
    deps: Deps,
) -> None:
    first = refer(deps)
    with pytest.raises(errors.DuplicateReferral) as caught:
        refer(deps, who=NURSE)
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert caught.value.metadata["existing_referral"] == first.referral.name


def test_a_closed_referral_does_not_block_a_new_one(deps: Deps) -> None:
    first = refer(deps)
    transitions.transition_referral(
        deps, GP, "p-0001", first.referral.id, Status.CANCELLED, reason="wrong offer"
    )
    assert refer(deps).referral.id != first.referral.id


def test_only_clinicians_refer(deps: Deps) -> None:
    with pytest.raises(errors.RoleNotPermitted):
        refer(deps, who=COACH)


def test_identitys_denial_refuses_the_referral_with_identitys_reason(
    deps: Deps, identity: FakeIdentity
) -> None:
    identity.deny[OTHER_GP.subject] = "NOT_OWN_DATA"
    with pytest.raises(errors.AccessRefused) as caught:
        refer(deps, who=OTHER_GP)
    assert (caught.value.code, caught.value.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_OWN_DATA",
    )
    assert outbox(deps) == []


def test_a_referral_named_under_a_patient_the_caller_may_not_see_is_refused_before_it_is_sought(
    deps: Deps, identity: FakeIdentity
) -> None:
    """A read or a change of one referral is asked of identity only for a party to it: to
    anyone else an existing referral and a made-up one, of a patient known or unknown, are
    alike NOT_FOUND, and identity is not asked (nothing is logged)."""
    real = refer(deps).referral
    identity.unknown.add("p-9999")
    identity.deny[OTHER_GP.subject] = "NO_CARE_RELATIONSHIP"
    calls: dict[str, Callable[[Principal, str, str], object]] = {
        "get": lambda who, patient, rid: referrals.get_referral(deps, who, patient, rid),
        "transition": lambda who, patient, rid: transitions.transition_referral(
            deps, who, patient, rid, Status.CANCELLED, reason="x"
        ),
        "record": lambda who, patient, rid: transitions.record_outcome(
            deps, who, patient, rid, transitions.OutcomeInput(attendance="none")
        ),
    }
    for name, call in calls.items():
        answers = set()
        for who, patient, rid in [
            (OTHER_GP, "p-0001", real.id),
            (OTHER_GP, "p-0001", "no-such-referral"),
            (GP, "p-9999", real.id),
            (GP, "p-9999", "no-such-referral"),
        ]:
            with pytest.raises(DomainError) as caught:
                call(who, patient, rid)
            answers.add((caught.value.code, caught.value.message, caught.value.reason))
        refused = (grpc.StatusCode.NOT_FOUND, "referral not found", "REFERRAL_NOT_FOUND")
        assert answers == {refused}, name
        identity.questions.clear()
        with pytest.raises(errors.ReferralNotFound):
            call(OTHER_GP, "p-0001", real.id)
        assert identity.questions == [], name


def test_an_unreachable_identity_fails_closed(deps: Deps, identity: FakeIdentity) -> None:
    identity.unavailable = True
    with pytest.raises(errors.IdentityUnavailable) as caught:
        refer(deps)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert outbox(deps) == []


def test_an_unknown_offer_is_not_found_with_a_field_violation(deps: Deps) -> None:
    with pytest.raises(errors.OfferNotFound) as caught:
        refer(deps, offer_id="nope")
    assert [v.field for v in caught.value.field_violations()] == ["referral.offer"]


def test_accepting_takes_a_place_and_a_full_offer_puts_the_next_on_its_waitlist(
    deps: Deps,
) -> None:
    a = refer(deps, "p-a").referral
    b = refer(deps, "p-b").referral
    c = refer(deps, "p-c").referral
    a2 = transitions.transition_referral(deps, PROVIDER, "p-a", a.id, Status.ACCEPTED).referral
    b2 = transitions.transition_referral(deps, PROVIDER, "p-b", b.id, Status.ACCEPTED).referral
    c2 = transitions.transition_referral(deps, PROVIDER, "p-c", c.id, Status.ACCEPTED).referral
    assert (a2.enrolment, a2.waitlist_position) == ("enrolled", 0)
    assert (b2.enrolment, b2.waitlist_position) == ("not-enrolled-on-waitlist", 1)
    assert (c2.enrolment, c2.waitlist_position) == ("not-enrolled-on-waitlist", 2)
    offer = offers.get_offer(deps, PROVIDER, "gli")
    assert (offer.places_taken, offer.waitlist_length) == (1, 2)
    with pytest.raises(errors.InvalidTransition) as caught:
        transitions.transition_referral(deps, PROVIDER, "p-b", b.id, Status.IN_PROGRESS)
    assert caught.value.reason == "NO_PLACE_AVAILABLE"
    # a leaves: b gets the place, c moves up.
    transitions.transition_referral(deps, GP, "p-a", a.id, Status.CANCELLED, reason="moved")
    b3 = referrals.get_referral(deps, GP, "p-b", b.id).referral
    c3 = referrals.get_referral(deps, GP, "p-c", c.id).referral
    assert (b3.enrolment, b3.waitlist_position) == ("enrolled", 0)
    assert c3.waitlist_position == 1
    events = outbox(deps)
    assert events[-1]["type"] == "enrolment-changed" and events[-1]["referral"] == b.name


def test_completing_with_feedback_closes_the_loop_for_the_referrer_and_the_patient(
    deps: Deps,
) -> None:
    r = refer(deps).referral
    for status in (Status.ACCEPTED, Status.IN_PROGRESS):
        transitions.transition_referral(deps, PROVIDER, "p-0001", r.id, status)
    outcome = transitions.OutcomeInput(
        attendance="full",
        sessions_attended=10,
        sessions_planned=10,
        result_summary="Active three times a week",
        measurements=[{"code": "weight-change", "value": -4.5, "unit": "kg"}],
        enrolment=Enrolment.ENROLLED,
    )
    done = transitions.transition_referral(
        deps, PROVIDER, "p-0001", r.id, Status.COMPLETED, outcome=outcome
    )
    assert done.referral.outcome is not None
    assert done.referral.outcome["measurements"][0]["value"] == -4.5
    for reader in (GP, PATIENT):
        seen = referrals.get_referral(deps, reader, "p-0001", r.id).referral
        assert seen.outcome is not None and seen.outcome["result_summary"]
    assert [(h.from_status, h.to_status) for h in done.history] == [
        (None, "requested"),
        ("requested", "accepted"),
        ("accepted", "in-progress"),
        ("in-progress", "completed"),
    ]
    assert all(h.actor == "coach.degroot" for h in done.history[1:])
    completed = [e for e in outbox(deps) if e["status"] == "completed"]
    assert completed[0]["outcome"]["measurements"][0]["code"] == "weight-change"


def test_a_rejection_carries_its_reason_and_business_status(deps: Deps) -> None:
    r = refer(deps).referral
    view = transitions.transition_referral(
        deps,
        PROVIDER,
        "p-0001",
        r.id,
        Status.REJECTED,
        reason="BMI too low",
        business_status=BusinessStatus.NOT_ELIGIBLE,
    )
    assert (view.referral.business_status, view.referral.status_reason) == (
        "not-eligible",
        "BMI too low",
    )
    assert view.history[-1].reason == "BMI too low"
    assert view.history[-1].business_status == "not-eligible"


def test_only_the_target_records_feedback(deps: Deps) -> None:
    r = refer(deps).referral
    transitions.transition_referral(deps, PROVIDER, "p-0001", r.id, Status.ACCEPTED)
    with pytest.raises(errors.WrongParty):
        transitions.record_outcome(
            deps, GP, "p-0001", r.id, transitions.OutcomeInput(attendance="none")
        )
    view = transitions.record_outcome(
        deps, PROVIDER, "p-0001", r.id, transitions.OutcomeInput(attendance="partial")
    )
    assert view.referral.outcome is not None
    assert outbox(deps)[-1]["type"] == "outcome-recorded"


def test_a_stale_etag_is_aborted(deps: Deps) -> None:
    r = refer(deps).referral
    with pytest.raises(errors.EtagMismatch):
        transitions.transition_referral(
            deps, PROVIDER, "p-0001", r.id, Status.ACCEPTED, etag='W/"0"'
        )


@pytest.mark.parametrize(
    ("reader", "outcome"),
    [
        (GP, "ok"),
        (NURSE, "ok"),
        (PROVIDER, "ok"),
        (PATIENT, "ok"),
        (OTHER_PATIENT, "NOT_FOUND"),
        (OTHER_GP, "NOT_FOUND"),
        (COACH, "NOT_FOUND"),
        (INSURER, "PERMISSION_DENIED"),
        (NOORD_GP, "NOT_FOUND"),
    ],
)
def test_who_sees_a_referral_and_every_read_asks_identity_once(
    deps: Deps, identity: FakeIdentity, reader: object, outcome: str
) -> None:
    r = refer(deps).referral
    identity.questions.clear()
    if outcome == "ok":
        referrals.get_referral(deps, reader, "p-0001", r.id)  # type: ignore[arg-type]
    else:
        with pytest.raises(DomainError) as caught:
            referrals.get_referral(deps, reader, "p-0001", r.id)  # type: ignore[arg-type]
        assert caught.value.code.name == outcome
    # only a party's read is asked (a non-party is answered as if there were no referral,
    # a role that is no party to any ROLE_NOT_PERMITTED), with the referral's context
    if outcome != "ok":
        assert identity.questions == []
        return
    (question,) = identity.questions
    assert question.referral is not None and question.referral.referral == r.name


def test_every_change_writes_one_outbox_event_in_cursor_order(deps: Deps) -> None:
    r = refer(deps).referral
    transitions.transition_referral(deps, PROVIDER, "p-0001", r.id, Status.ACCEPTED)
    transitions.transition_referral(deps, PROVIDER, "p-0001", r.id, Status.IN_PROGRESS)
    events = outbox(deps)
    assert [e["cursor"] for e in events] == [1, 2, 3]
    assert [e["status"] for e in events] == ["requested", "accepted", "in-progress"]
    assert events[1]["previous_status"] == "requested"
    assert {e["target_organisation"] for e in events} == {"organisations/gli-beweegfit"}


def test_a_failed_change_writes_no_event(deps: Deps) -> None:
    r = refer(deps).referral
    with pytest.raises(errors.InvalidTransition):
        transitions.transition_referral(deps, PROVIDER, "p-0001", r.id, Status.COMPLETED)
    assert len(outbox(deps)) == 1


def _watch(deps: Deps, who: object, after: int = 0) -> list[events.Event]:
    return list(events.watch_events(deps, who, after_cursor=after, follow=False))  # type: ignore[arg-type]


def test_the_watch_stream_shows_each_party_only_its_referrals_and_resumes_from_a_cursor(
    deps: Deps,
) -> None:
    listed_offer(deps, "walk", owner=COACH)
    a = refer(deps, "p-0001", "gli").referral
    b = refer(deps, "p-0002", "walk").referral
    transitions.transition_referral(deps, PROVIDER, "p-0001", a.id, Status.ACCEPTED)
    assert [e.cursor for e in _watch(deps, GP)] == [1, 2, 3]
    assert {e.payload["referral"] for e in _watch(deps, PROVIDER)} == {a.name}
    assert {e.payload["referral"] for e in _watch(deps, COACH)} == {b.name}
    assert {e.payload["referral"] for e in _watch(deps, PATIENT)} == {a.name}
    assert [e.cursor for e in _watch(deps, CAREPLAN)] == [1, 2, 3]
    assert _watch(deps, NOORD_GP) == []
    assert [e.cursor for e in _watch(deps, GP, after=2)] == [3]
    with pytest.raises(errors.RoleNotPermitted):
        _watch(deps, INSURER)


def test_the_watch_stream_leaves_out_referrals_identity_denies(
    deps: Deps, identity: FakeIdentity
) -> None:
    refer(deps)
    identity.deny[GP.subject] = "NO_CARE_RELATIONSHIP"
    assert _watch(deps, GP) == []


def test_a_followed_stream_polls_until_the_client_goes_away(deps: Deps) -> None:
    refer(deps)
    polls = iter([True, True, True, False])
    seen = list(events.watch_events(deps, GP, after_cursor=0, is_active=lambda: next(polls)))
    assert [e.cursor for e in seen] == [1]


def test_a_patients_referrals_are_listed_newest_first_page_by_page(deps: Deps) -> None:
    listed_offer(deps, "walk")
    listed_offer(deps, "diet")
    clock = deps.clock
    assert isinstance(clock, Clock)
    made = []
    for offer in ("gli", "walk", "diet"):
        clock.now += dt.timedelta(minutes=1)
        made.append(refer(deps, offer_id=offer).referral.name)
    first = referrals.list_referrals(deps, GP, "p-0001", status=None, page=PageRequest(2))
    rest = referrals.list_referrals(
        deps, GP, "p-0001", status=None, page=PageRequest(2, first.next)
    )
    assert [v.referral.name for v in [*first.items, *rest.items]] == made[::-1]
    assert rest.next is None
    everyone = referrals.list_referrals(deps, GP, "-", status=None, page=PageRequest(10))
    assert [v.referral.name for v in everyone.items] == made[::-1]


def test_the_kis_as_itself_lists_and_follows_its_organisations_referrals_each_asked_once(
    deps: Deps, identity: FakeIdentity
) -> None:
    """Issue 14: the practice's KIS with its own client-credentials token (realm role
    ``delegate``, acting for nobody) sees the referrals its organisation made or receives,
    each read asked of identity like a person's (one question per referral listed across
    patients or followed, with its context and record holder, one per patient listed for
    one patient), and no other organisation's."""
    ours = refer(deps, "p-0001").referral
    theirs = refer(deps, "p-0002", who=OTHER_GP).referral
    identity.questions.clear()
    listed = referrals.list_referrals(deps, KIS, "-", status=None, page=PageRequest(50))
    assert [v.referral.name for v in listed.items] == [ours.name]
    (asked,) = identity.questions
    assert (asked.subject, asked.patient_id, asked.access.value) == (KIS, "p-0001", "read")
    assert asked.referral is not None and asked.referral.referral == ours.name
    assert asked.record_holder_id == "gp-de-linde"
    one = referrals.list_referrals(deps, KIS, "p-0001", status=None, page=PageRequest(50))
    assert [v.referral.name for v in one.items] == [ours.name]
    identity.questions.clear()
    assert {e.payload["referral"] for e in _watch(deps, KIS)} == {ours.name}
    (asked,) = identity.questions
    assert asked.referral is not None and asked.referral.referral == ours.name
    assert asked.record_holder_id == "gp-de-linde"
    assert theirs.name not in {e.payload["referral"] for e in _watch(deps, KIS)}


def test_the_kis_as_itself_sees_nothing_identity_refuses_and_changes_nothing(
    deps: Deps, identity: FakeIdentity
) -> None:
    r = refer(deps).referral
    identity.deny[KIS.subject] = "ROLE_NOT_PERMITTED"
    assert referrals.list_referrals(deps, KIS, "-", status=None, page=PageRequest(50)).items == []
    assert _watch(deps, KIS) == []
    with pytest.raises(DomainError) as caught:
        referrals.list_referrals(deps, KIS, "p-0001", status=None, page=PageRequest(50))
    assert caught.value.reason == "ROLE_NOT_PERMITTED"
    identity.deny.clear()
    identity.questions.clear()
    with pytest.raises(DomainError) as refused:
        referrals.get_referral(deps, KIS, "p-0001", r.id)
    # it reads no single referral as itself: refused by its role, identity not asked
    assert refused.value.reason == "ROLE_NOT_PERMITTED"
    assert identity.questions == []
    with pytest.raises(DomainError):
        transitions.transition_referral(deps, KIS, "p-0001", r.id, Status.CANCELLED, reason="x")
