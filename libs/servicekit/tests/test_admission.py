"""servicekit.admission: decide and log, refuse, and only then found or NotFound."""

from __future__ import annotations

import logging

import pytest

from servicekit.admission import admit, decide
from servicekit.auth import Principal
from servicekit.authorization import AccessRefused
from servicekit.errors import NotFound, PermissionDenied
from servicekit.identity_client import Access, AccessQuestion
from testkit.fakes import FakeIdentity

GP = Principal("dr-jansen", "kis", "organisations/gp", "organisations/cg", frozenset({"gp"}))


def _missing() -> NotFound:
    return NotFound("no such plan", reason="PLAN_NOT_FOUND")


def test_found_after_a_permit_and_not_found_only_after_a_permit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    identity = FakeIdentity()
    question = AccessQuestion(GP, "p-1", Access.READ)
    assert admit(identity, question, "plan", missing=_missing) == "plan"
    with pytest.raises(NotFound):
        admit(identity, question, None, missing=_missing)
    assert len(identity.questions) == 2  # asked (and logged by identity) both times

    refusing = FakeIdentity(unknown={"p-1"})
    caplog.set_level(logging.INFO, "servicekit.admission")
    for found in ("plan", None):  # the same refusal whether the plan exists or not
        with pytest.raises(AccessRefused) as caught:
            admit(refusing, question, found, missing=_missing, log_fields={"role": "gp"})
        assert caught.value.reason == "NO_CARE_RELATIONSHIP"
    records = [r for r in caplog.records if r.name == "servicekit.admission"]
    assert [(r.getMessage(), r.__dict__["decision"], r.__dict__["role"]) for r in records] == [
        ("patient_data_access", "deny", "gp")
    ] * 2
    assert all("p-1" not in str(r.__dict__.values()) for r in records)


def test_decide_with_the_services_own_refusal() -> None:
    def refuse(decision: object) -> PermissionDenied:
        return PermissionDenied("access to the care plan was refused", reason="X")

    identity = FakeIdentity(deny={"dr-jansen": "NO_CONSENT"})
    with pytest.raises(PermissionDenied) as caught:
        decide(identity, AccessQuestion(GP, "p-1", Access.UPDATE), refuse=refuse)
    assert caught.value.reason == "X"
    assert FakeIdentity().authorize(AccessQuestion(GP, "p-1", Access.UPDATE)).permitted
