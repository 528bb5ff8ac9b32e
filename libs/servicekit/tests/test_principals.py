"""servicekit.principals: a Principal made from ids holds resource names, as one made from a
token's claims does."""

from __future__ import annotations

from servicekit.auth import Principal
from servicekit.principals import care_group_admin, principal


def test_ids_become_resource_names_and_empty_stays_empty() -> None:
    made = principal(
        "u-1", client_id="kis", roles=["gp"], organisation="gp-a", care_group="cg-a", patient=""
    )
    assert made == Principal(
        subject="u-1",
        client_id="kis",
        organisation="organisations/gp-a",
        care_group="organisations/cg-a",
        roles=frozenset({"gp"}),
    )
    patient = principal("p", client_id="app", roles=["patient"], care_group="cg-a", patient="p-1")
    assert (patient.organisation, patient.patient, patient.is_patient) == ("", "patients/p-1", True)


def test_a_care_group_admin_belongs_to_the_care_group_itself() -> None:
    admin = care_group_admin("cg-a", "admin", client_id="seed")
    assert admin.organisation == admin.care_group == "organisations/cg-a"
    assert admin.roles == frozenset({"care-group-admin"})
    assert admin.client_id == "seed"
