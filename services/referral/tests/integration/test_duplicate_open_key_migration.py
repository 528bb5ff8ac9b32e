"""Migration 0005 on PostgreSQL: open referrals become unique per patient, offer and
referring organisation (``open_key``), with the data kept both ways; the downgrade refuses,
changing nothing, while two organisations' open referrals of a patient for an offer
coexist."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from servicekit.migrations import alembic_config, upgrade
from testkit.database import engine_on, fresh_database

PACKAGE = "referral.migrations"

OFFER = """
INSERT INTO offers (id, care_group_id, owner_org_id, display_name, description, category,
  state, target_conditions, service_area, schedules, languages, application_process, contact,
  cost_options, total_places, places_taken, waitlist_length, capacity_notes, eligibility,
  eligibility_description, version, create_time, update_time)
VALUES (:id, 'cg-zuidoost', 'gli-beweegfit', 'GLI', '', 'GLI', 'listed', '[]', '{}', '[]',
  '[]', '', '{}', '[]', 0, 0, 0, '', '{}', '', 1, now(), now())
"""
REFERRAL = """
INSERT INTO referrals (id, patient_id, care_group_id, offer_id, referrer_org_id,
  referrer_user, referrer_role, target_org_id, reason, profile, status, status_reason,
  enrolment, waitlist_position, holds_place, eligibility, open_key, version, create_time,
  update_time)
VALUES (:id, :patient, 'cg-zuidoost', :offer, :org, 'u', 'gp', 'gli-beweegfit', 'r', '{}',
  :status, '', 'not-enrolled', 0, false, '{}', :key, 1, now(), now())
"""


@pytest.fixture
def database() -> Iterator[tuple[str, Engine]]:
    with fresh_database("referral_openkey") as url, engine_on(url) as engine:
        yield url, engine


def _refer(
    engine: Engine, id_: str, patient: str, offer: str, org: str, key: str | None, status: str
) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(REFERRAL),
            {
                "id": id_,
                "patient": patient,
                "offer": offer,
                "org": org,
                "key": key,
                "status": status,
            },
        )


def _keys(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT id, open_key FROM referrals")).tuples().all())


def _version(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def _width(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT character_maximum_length FROM information_schema.columns"
                    " WHERE table_name = 'referrals' AND column_name = 'open_key'"
                )
            ).scalar_one()
        )


def test_upgrade_keys_open_referrals_by_referrer_and_downgrade_restores_them(
    database: tuple[str, Engine],
) -> None:
    url, engine = database
    upgrade(PACKAGE, url, "0004")
    with engine.begin() as conn:
        conn.execute(text(OFFER), {"id": "gli"})
    _refer(engine, "r-open", "p-1", "gli", "gp-de-linde", "p-1/gli", "requested")
    _refer(engine, "r-closed", "p-1", "gli", "gp-de-linde", None, "cancelled")
    _refer(engine, "r-other", "p-2", "gli", "gp-het-anker", "p-2/gli", "accepted")

    upgrade(PACKAGE, url, "0005")
    assert _keys(engine) == {
        "r-open": "p-1/gli/gp-de-linde",
        "r-closed": None,
        "r-other": "p-2/gli/gp-het-anker",
    }
    assert _width(engine) == 256
    # another organisation may now have its own open referral; the same one may not
    _refer(engine, "r-second", "p-1", "gli", "gp-het-anker", "p-1/gli/gp-het-anker", "requested")
    with pytest.raises(IntegrityError):
        _refer(engine, "r-twice", "p-1", "gli", "gp-de-linde", "p-1/gli/gp-de-linde", "requested")

    with pytest.raises(RuntimeError, match="1 patient/offer pair"):
        command.downgrade(alembic_config(PACKAGE, url), "0004")
    assert _version(engine) == "0005"
    assert _keys(engine)["r-open"] == "p-1/gli/gp-de-linde"
    assert _width(engine) == 256

    with engine.begin() as conn:
        conn.execute(
            text("UPDATE referrals SET status = 'cancelled', open_key = NULL WHERE id = 'r-second'")
        )
    command.downgrade(alembic_config(PACKAGE, url), "0004")
    assert _version(engine) == "0004"
    assert _width(engine) == 200
    assert _keys(engine) == {
        "r-open": "p-1/gli",
        "r-closed": None,
        "r-other": "p-2/gli",
        "r-second": None,
    }


def test_the_downgrade_refusal_names_no_patient(database: tuple[str, Engine]) -> None:
    url, engine = database
    upgrade(PACKAGE, url)
    with engine.begin() as conn:
        conn.execute(text(OFFER), {"id": "gli"})
    _refer(engine, "a", "p-secret", "gli", "gp-de-linde", "p-secret/gli/gp-de-linde", "requested")
    _refer(engine, "b", "p-secret", "gli", "gp-het-anker", "p-secret/gli/gp-het-anker", "accepted")
    head = _version(engine)
    with pytest.raises(RuntimeError) as refused:
        command.downgrade(alembic_config(PACKAGE, url), "0004")
    assert "p-secret" not in str(refused.value)
    assert _version(engine) == head  # nothing was downgraded
