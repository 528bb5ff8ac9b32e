"""Callers the integration tests decide for, as identity's token check would build them."""

from __future__ import annotations

from testkit.fakes import fake_principal

GP = fake_principal("gp-user", roles=["gp"], organisation="gp-de-linde", client_id="test")
