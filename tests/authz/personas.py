"""The callers of the authorization table: who they are (role, organisation and its type,
care group) and how they get their real token from the test OIDC issuer.

Every one is a user or client of the demo realm (``infra/keycloak``) or one of testkit's
extra users of the second care group (``cg-noord``).
"""

from __future__ import annotations

from dataclasses import dataclass

HOME = "cg-zuidoost"
FOREIGN = "cg-noord"
# The organisation that holds the records of every patient in the table: the patients'
# GP practice, which registered them, created their care plan, referred them, enrolled
# them and measured them.
PRACTICE = "gp-de-linde"


@dataclass(frozen=True)
class Persona:
    key: str
    label: str
    role: str
    organisation: str  # organisation id, '' for patients and services
    organisation_type: str
    care_group: str
    username: str = ""  # a person logging in through the KIS (or the patient app)
    client: str = ""  # a client with a service account (client_credentials)
    acts_for: str = ""  # the username a delegate client names in x-carenet-on-behalf-of
    patient: str = ""  # the patient id of a patient persona

    @property
    def is_patient(self) -> bool:
        return self.role == "patient"

    @property
    def holder(self) -> bool:
        """A person of the organisation that holds the table's patients' records."""
        return self.organisation == PRACTICE


PERSONAS: dict[str, Persona] = {
    p.key: p
    for p in [
        Persona(
            "gp",
            "GP of the patient's practice",
            "gp",
            PRACTICE,
            "gp-practice",
            HOME,
            username="dr.jansen",
        ),
        Persona(
            "nurse",
            "practice nurse of the patient's practice",
            "practice-nurse",
            PRACTICE,
            "gp-practice",
            HOME,
            username="poh.bakker",
        ),
        Persona(
            "kis",
            "the practice's KIS (delegate client) acting for its GP",
            "delegate, for a gp",
            PRACTICE,
            "gp-practice",
            HOME,
            client="carenet-kis",
            acts_for="dr.jansen",
        ),
        Persona(
            "kis-system",
            "the practice's KIS (delegate client) acting as itself, naming nobody",
            "delegate",
            PRACTICE,
            "gp-practice",
            HOME,
            client="carenet-kis",
        ),
        Persona(
            "other-gp",
            "GP of another practice",
            "gp",
            "gp-het-anker",
            "gp-practice",
            HOME,
            username="dr.devries",
        ),
        Persona(
            "specialist",
            "medical specialist of the hospital",
            "specialist",
            "hosp-catharina",
            "hospital",
            HOME,
            username="dr.smit",
        ),
        Persona(
            "municipality",
            "municipality officer",
            "municipality-officer",
            "gm-eindhoven",
            "municipality",
            HOME,
            username="ambtenaar.mulder",
        ),
        Persona(
            "coach",
            "sport coach of the municipality",
            "sport-coach",
            "gm-eindhoven",
            "municipality",
            HOME,
            username="coach.visser",
        ),
        Persona(
            "provider",
            "lifestyle provider",
            "provider",
            "gli-beweegfit",
            "lifestyle-provider",
            HOME,
            username="coach.degroot",
        ),
        Persona(
            "insurer",
            "insurer analyst",
            "insurer-analyst",
            "ins-vgz",
            "insurer",
            HOME,
            username="analist.peters",
        ),
        Persona(
            "admin",
            "care-group admin",
            "care-group-admin",
            HOME,
            "care-group",
            HOME,
            username="admin.zuidoost",
        ),
        Persona(
            "auditor",
            "auditor of the care group",
            "auditor",
            HOME,
            "care-group",
            HOME,
            username="auditor.dekker",
        ),
        Persona(
            "patient",
            "patient (patient app)",
            "patient",
            "",
            "-",
            HOME,
            username="pat.dewit",
            patient="p-0001",
        ),
        Persona(
            "foreign-gp",
            "GP of a practice of another care group",
            "gp",
            "gp-noord",
            "gp-practice",
            FOREIGN,
            username="dr.noord",
        ),
        Persona(
            "svc-referral",
            "the referral service's account (asking for an end user)",
            "service",
            HOME,
            "care-group",
            HOME,
            client="svc-referral",
        ),
        Persona(
            "svc-careplan",
            "the careplan service's account (asking for an end user)",
            "service",
            HOME,
            "care-group",
            HOME,
            client="svc-careplan",
        ),
    ]
}

# The organisations that ask for data they do not hold (the requesters of the consents).
REQUESTER_ORGANISATIONS = {
    "gp-het-anker": "GP_PRACTICE",
    "hosp-catharina": "HOSPITAL",
    "gm-eindhoven": "MUNICIPALITY",
    "gli-beweegfit": "LIFESTYLE_PROVIDER",
}
