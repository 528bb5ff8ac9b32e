"""A :class:`~servicekit.auth.Principal` made in code rather than from a token: the caller a
seed command acts as, or one a test calls the service layer with.
"""

from __future__ import annotations

from collections.abc import Iterable

from servicekit.auth import Principal, organisation_name, patient_name


def principal(
    subject: str,
    *,
    client_id: str,
    roles: Iterable[str],
    organisation: str = "",
    care_group: str = "",
    patient: str = "",
) -> Principal:
    """A caller as the token interceptor makes one from a token's claims: ``organisation``,
    ``care_group`` and ``patient`` are ids (``gp-de-linde``), made resource names here ('' stays
    '')."""
    return Principal(
        subject=subject,
        client_id=client_id,
        organisation=organisation_name(organisation),
        care_group=organisation_name(care_group),
        roles=frozenset(roles),
        patient=patient_name(patient),
    )


def care_group_admin(care_group: str, subject: str, *, client_id: str) -> Principal:
    """The administrator of a care group (``care-group-admin``), whose organisation is the
    care group itself."""
    return principal(
        subject,
        client_id=client_id,
        roles=["care-group-admin"],
        organisation=care_group,
        care_group=care_group,
    )
