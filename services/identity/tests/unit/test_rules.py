"""The identity rules that need no database: BSN, consent states, the hash chain."""

from __future__ import annotations

import datetime as dt

import pytest

from identity.models import (
    GENESIS_HASH,
    AccessLogEntry,
    Consent,
    ConsentState,
    OrgRef,
    chain_hash,
    normalise_bsn,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("bsn", ["111222333", "123456782", "999990019"])
def test_a_bsn_that_passes_the_11_test_is_valid(bsn: str) -> None:
    assert normalise_bsn(bsn) == bsn


def test_an_eight_digit_bsn_gets_a_leading_zero() -> None:
    # 0 + 12345672: 9*0+8*1+7*2+6*3+5*4+4*5+3*6+2*7-1*2 = 110, divisible by 11
    assert normalise_bsn("12345672") == "012345672"


@pytest.mark.parametrize(
    "bsn", ["111222334", "12345678a", "1234567", "1234567890", "000000000", ""]
)
def test_a_bsn_that_fails_the_format_or_the_11_test_is_refused(bsn: str) -> None:
    assert normalise_bsn(bsn) is None


def _consent(**kw: object) -> Consent:
    values: dict[str, object] = {
        "id": "c1",
        "patient_id": "p1",
        "record_holder_type": "gp-practice",
        "record_holder_id": None,
        "data_category": "care-plan",
        "requester_type": "hospital",
        "requester_id": None,
        "start_time": T0,
        "end_time": None,
        "withdraw_time": None,
        "recorded_by": "u",
    }
    values.update(kw)
    return Consent(**values)


def test_a_consent_is_active_between_its_start_and_end() -> None:
    consent = _consent(end_time=T0 + dt.timedelta(days=10))
    assert consent.state_at(T0 - dt.timedelta(seconds=1)) is ConsentState.NOT_YET_VALID
    assert consent.state_at(T0) is ConsentState.ACTIVE
    assert consent.state_at(T0 + dt.timedelta(days=10)) is ConsentState.EXPIRED


def test_a_withdrawn_consent_stops_at_the_moment_of_withdrawal() -> None:
    consent = _consent(withdraw_time=T0 + dt.timedelta(days=1))
    assert consent.state_at(T0 + dt.timedelta(hours=1)) is ConsentState.ACTIVE
    assert consent.state_at(T0 + dt.timedelta(days=1)) is ConsentState.WITHDRAWN


GP = OrgRef("gp-a", "gp-practice", "cg")
HOSPITAL = OrgRef("hosp-a", "hospital", "cg")
OTHER_HOSPITAL = OrgRef("hosp-b", "hospital", "cg")
TOWN = OrgRef("gm-a", "municipality", "cg")


def test_a_categorical_consent_covers_every_organisation_of_the_category() -> None:
    consent = _consent()
    now = T0 + dt.timedelta(days=1)
    for hospital in (HOSPITAL, OTHER_HOSPITAL):
        assert consent.terms.covers(
            record_holder=GP, data_category="care-plan", requester=hospital, moment=now
        )
    assert not consent.terms.covers(
        record_holder=GP, data_category="care-plan", requester=TOWN, moment=now
    )
    assert not consent.terms.covers(
        record_holder=GP, data_category="referral", requester=HOSPITAL, moment=now
    )
    assert not consent.terms.covers(
        record_holder=HOSPITAL, data_category="care-plan", requester=HOSPITAL, moment=now
    )


def test_a_consent_naming_one_organisation_covers_only_that_one() -> None:
    consent = _consent(requester_type=None, requester_id="hosp-a")
    now = T0 + dt.timedelta(days=1)
    assert consent.terms.covers(
        record_holder=GP, data_category="care-plan", requester=HOSPITAL, moment=now
    )
    assert not consent.terms.covers(
        record_holder=GP, data_category="care-plan", requester=OTHER_HOSPITAL, moment=now
    )


def _entry(**kw: object) -> AccessLogEntry:
    values: dict[str, object] = {
        "event": "AUTHORIZE",
        "event_time": T0,
        "patient_id": "p1",
        "care_group_id": "cg",
        "user_id": "u",
        "responsible_user": "u",
        "organisation_id": "gp-a",
        "roles": "gp",
        "data_category": "care-plan",
        "action": "read",
        "purpose": "",
        "decision": "permit",
        "basis": "care-relationship",
        "reason": "CARE_RELATIONSHIP",
        "emergency": False,
        "emergency_reason": "",
        "access_point": "kis",
    }
    values.update(kw)
    return AccessLogEntry(**values)


def test_an_entry_hash_covers_the_previous_hash_and_every_field() -> None:
    entry = _entry()
    base = chain_hash(GENESIS_HASH, entry.canonical())
    assert chain_hash("f" * 64, entry.canonical()) != base
    for field in AccessLogEntry.HASHED_FIELDS:
        value = getattr(entry, field)
        if isinstance(value, bool):
            changed: object = not value
        elif isinstance(value, dt.datetime):
            changed = value + dt.timedelta(microseconds=1)
        else:
            changed = f"{value}x"
        assert chain_hash(GENESIS_HASH, _entry(**{field: changed}).canonical()) != base, field


def test_the_canonical_form_is_stable_across_time_zones() -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    assert _entry(event_time=T0).canonical() == _entry(event_time=T0.astimezone(cet)).canonical()
