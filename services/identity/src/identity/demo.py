"""The demo region used by ``make run`` and the tests. Its organisation and patient ids are
the ones the demo realm export (``infra/keycloak/demo-realm.json``) puts into tokens, and its
people directory is read from that same file, so the two cannot drift apart.

The BSNs are test numbers that pass the 11-test; they are not issued to anyone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

from identity import people
from identity.models import DataCategory, OrganisationType, RelationshipKind
from identity.use_cases import consents, organisations, patients, relationships
from identity.use_cases.common import idempotent
from identity.use_cases.deps import Deps
from servicekit.auth import Principal
from servicekit.principals import care_group_admin, principal

CARE_GROUP = "cg-zuidoost"
ORGANISATIONS: list[tuple[str, organisations.OrganisationInput]] = [
    (
        "gp-de-linde",
        organisations.OrganisationInput(
            "Huisartsenpraktijk De Linde", OrganisationType.GP_PRACTICE, agb_code="01012345"
        ),
    ),
    (
        "gp-het-anker",
        organisations.OrganisationInput(
            "Huisartsenpraktijk Het Anker", OrganisationType.GP_PRACTICE, agb_code="01054321"
        ),
    ),
    (
        "hosp-catharina",
        organisations.OrganisationInput(
            "Catharina Ziekenhuis", OrganisationType.HOSPITAL, agb_code="06010713", ura="12345678"
        ),
    ),
    (
        "gm-eindhoven",
        organisations.OrganisationInput(
            "Gemeente Eindhoven", OrganisationType.MUNICIPALITY, cbs_municipality_code="GM0772"
        ),
    ),
    (
        "gli-beweegfit",
        organisations.OrganisationInput(
            "BeweegFit GLI", OrganisationType.LIFESTYLE_PROVIDER, agb_code="90012345"
        ),
    ),
    ("ins-vgz", organisations.OrganisationInput("VGZ", OrganisationType.INSURER, uzovi="7095")),
]
# (patient id, BSN, organisations with a care relationship)
PATIENTS = [
    (
        "p-0001",
        "111222333",
        [
            ("gp-de-linde", RelationshipKind.COORDINATING),
            ("hosp-catharina", RelationshipKind.TREATING),
            ("gli-beweegfit", RelationshipKind.REFERRED),
        ],
    ),
    (
        "p-0002",
        "123456782",
        [
            ("gp-de-linde", RelationshipKind.COORDINATING),
            ("gm-eindhoven", RelationshipKind.SOCIAL_SUPPORT),
        ],
    ),
    ("p-0003", "999990019", [("gp-het-anker", RelationshipKind.COORDINATING)]),
]


def _seed(subject: str, role: str, care_group: str, **ids: str) -> Principal:
    return principal(
        f"seed-{subject}", client_id="identity-seed", roles=[role], care_group=care_group, **ids
    )


def _admin(care_group: str) -> Principal:
    return care_group_admin(care_group, f"seed-{care_group}", client_id="identity-seed")


def _clinician(org_id: str, care_group: str) -> Principal:
    return _seed(org_id, "gp", care_group, organisation=org_id)


def _patient(patient_id: str, care_group: str) -> Principal:
    return _seed(patient_id, "patient", care_group, patient=patient_id)


# Where the demo realm export lives in the repository.
REALM_FILE = Path("infra") / "keycloak" / "demo-realm.json"


def realm_file(configured: str = "", origins: Sequence[Path] = ()) -> Path:
    """The demo realm export: ``configured`` (``IDENTITY_DEMO_REALM_FILE``) if given, else the
    repository's ``infra/keycloak/demo-realm.json``, found above ``origins`` (by default this
    module and the working directory). The realm's former name, ``carenet-realm.json``, is
    not looked for: that file is gone, and a stale copy must not seed the directory."""
    if configured:
        return Path(configured)
    for origin in origins or (Path(__file__).resolve(), Path.cwd().resolve()):
        for folder in (origin, *origin.parents):
            if (folder / REALM_FILE).is_file():
                return folder / REALM_FILE
    raise FileNotFoundError(
        "no demo realm export found; set IDENTITY_DEMO_REALM_FILE to infra/keycloak/demo-realm.json"
    )


def seed(deps: Deps, realm: Path | None = None) -> None:
    """Creates the demo region, and the people directory from the demo realm export
    (``realm``, by default :func:`realm_file`); running it again changes nothing."""
    people.sync_people(
        deps.uow,
        people.realm_people(json.loads((realm or realm_file()).read_text(encoding="utf-8"))),
        deps.clock(),
    )
    organisations.bootstrap_care_group(
        deps,
        CARE_GROUP,
        organisations.OrganisationInput(
            "Zorggroep Zuidoost", OrganisationType.CARE_GROUP, agb_code="07012345"
        ),
    )
    admin = _admin(CARE_GROUP)
    for org_id, data in ORGANISATIONS:
        organisations.create_organisation(
            deps,
            admin,
            data,
            org_id,
            request=idempotent(deps, admin, f"seed-org-{org_id}", "CreateOrganisation"),
        )
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for patient_id, bsn, relations in PATIENTS:
        # The admin chooses the id (the realm's patients name it); the first organisation's
        # clinician then registers the same BSN, which records its relationship.
        patients.register_patient(
            deps,
            admin,
            bsn,
            patient_id,
            idempotent(deps, admin, f"seed-patient-{patient_id}", "RegisterPatient"),
        )
        clinician = _clinician(relations[0][0], CARE_GROUP)
        patients.register_patient(
            deps,
            clinician,
            bsn,
            request=idempotent(deps, clinician, f"seed-patient-{patient_id}", "RegisterPatient"),
        )
        for org_id, kind in relations[1:]:
            relationships.create_care_relationship(
                deps,
                admin,
                patient_id,
                org_id,
                kind,
                start,
                None,
                idempotent(
                    deps, admin, f"seed-rel-{patient_id}-{org_id}", "CreateCareRelationship"
                ),
            )
    # p-0001 lets hospitals read the care plan the GP practice holds, and lets lifestyle
    # providers read the referral data and the care plan.
    choices = [
        ("p-0001", DataCategory.CARE_PLAN, OrganisationType.GP_PRACTICE, OrganisationType.HOSPITAL),
        (
            "p-0001",
            DataCategory.CARE_PLAN,
            OrganisationType.GP_PRACTICE,
            OrganisationType.LIFESTYLE_PROVIDER,
        ),
        (
            "p-0001",
            DataCategory.REFERRAL,
            OrganisationType.GP_PRACTICE,
            OrganisationType.LIFESTYLE_PROVIDER,
        ),
        (
            "p-0002",
            DataCategory.CARE_PLAN,
            OrganisationType.GP_PRACTICE,
            OrganisationType.MUNICIPALITY,
        ),
    ]
    for patient_id, category, holder, requester in choices:
        patient = _patient(patient_id, CARE_GROUP)
        consents.create_consent(
            deps,
            patient,
            patient_id,
            consents.ConsentInput(
                category, record_holder_type=holder, requester_type=requester, start_time=start
            ),
            idempotent(
                deps,
                patient,
                f"seed-consent-{patient_id}-{category.value}-{requester.value}",
                "CreateConsent",
            ),
        )
