"""Every (state, new status, party) combination of the referral status machine: the allowed
ones succeed for the right party only, every other one is refused with a specific reason."""

from __future__ import annotations

import grpc
import pytest

from referral import errors
from referral.deps import Deps
from referral.models import TRANSITIONS, Party, Status
from referral.use_cases import history, transitions
from servicekit.errors import DomainError, InvalidArgument

from ..fakes import GP, PATIENT, PROVIDER, fake_deps, principal
from .helpers import force_status, listed_offer, refer

PARTIES = {Party.REFERRER: GP, Party.TARGET: PROVIDER, Party.PATIENT: PATIENT}
CASES = [(s, t, p) for s in Status for t in Status for p in Party]


@pytest.fixture(scope="module")
def deps() -> Deps:
    deps = fake_deps()
    listed_offer(deps, "gli", total_places=0)
    return deps


def _attempt(deps: Deps, state: Status, target: Status, party: Party) -> object:
    # A fresh patient per case, so no case's referral blocks another's.
    patient = f"p-{state.value}-{target.value}-{party.value}"
    view = refer(deps, patient)
    force_status(deps, view.referral.id, state)
    who = PARTIES[party]
    if party is Party.PATIENT:
        who = principal(patient, roles=("patient",), patient=patient)
    return transitions.transition_referral(
        deps,
        who,
        patient,
        view.referral.id,
        target,
        reason="reason given",
        business_status=None,
    )


@pytest.mark.parametrize(("state", "target", "party"), CASES, ids=str)
def test_the_status_machine(deps: Deps, state: Status, target: Status, party: Party) -> None:
    allowed = TRANSITIONS.get((state, target))
    if allowed is not None and party in allowed:
        view = _attempt(deps, state, target, party)
        assert isinstance(view, history.ReferralView)
        assert view.referral.status == target.value
        return
    with pytest.raises(DomainError) as caught:
        _attempt(deps, state, target, party)
    if allowed is None:
        assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert caught.value.reason == "INVALID_TRANSITION"
    else:
        assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert caught.value.reason == "TRANSITION_NOT_ALLOWED_FOR_PARTY"


def test_the_machine_is_the_one_of_the_reference() -> None:
    allowed = {(s.value, t.value) for (s, t) in TRANSITIONS}
    assert ("draft", "requested") in allowed
    assert ("on-hold", "in-progress") in allowed and ("in-progress", "on-hold") in allowed
    assert ("requested", "in-progress") not in allowed
    assert ("completed", "entered-in-error") in allowed
    assert ("entered-in-error", "entered-in-error") not in allowed
    assert len(TRANSITIONS) == 17 + 9


@pytest.mark.parametrize(
    ("state", "target"),
    [
        (Status.REQUESTED, Status.REJECTED),
        (Status.REQUESTED, Status.CANCELLED),
        (Status.ACCEPTED, Status.ON_HOLD),
        (Status.IN_PROGRESS, Status.FAILED),
    ],
)
def test_a_reason_is_required_for_rejecting_cancelling_holding_and_failing(
    deps: Deps, state: Status, target: Status
) -> None:
    view = refer(deps, f"p-reason-{target.value}")
    force_status(deps, view.referral.id, state)
    with pytest.raises(InvalidArgument) as caught:
        transitions.transition_referral(
            deps, PROVIDER, f"p-reason-{target.value}", view.referral.id, target, reason=" "
        )
    assert caught.value.reason == "REASON_REQUIRED"
    assert [v.field for v in caught.value.violations] == ["reason"]


def test_a_cancelled_referral_cannot_be_accepted(deps: Deps) -> None:
    view = refer(deps, "p-cancelled")
    transitions.transition_referral(
        deps, GP, "p-cancelled", view.referral.id, Status.CANCELLED, reason="patient moved"
    )
    with pytest.raises(errors.InvalidTransition):
        transitions.transition_referral(
            deps, PROVIDER, "p-cancelled", view.referral.id, Status.ACCEPTED
        )
