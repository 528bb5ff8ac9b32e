"""Builds the referral gRPC server (servicekit's one server factory)."""

from __future__ import annotations

from referral.errors import DOMAIN
from referral.servicer import ReferralServicer
from servicekit.service_server import server_factory

# The person a delegate (a practice's KIS) acts for is resolved at identity before every
# call, so that every check sees that person's roles (servicekit.delegation).
create_server = server_factory(ReferralServicer, domain=DOMAIN, delegations=lambda d: d.delegations)
