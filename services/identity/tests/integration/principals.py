"""Callers the integration tests decide for, as identity's token check would build them."""

from __future__ import annotations

from servicekit.auth import Principal

GP = Principal(
    subject="gp-user",
    client_id="test",
    organisation="organisations/gp-de-linde",
    care_group="organisations/cg-zuidoost",
    roles=frozenset({"gp"}),
)
