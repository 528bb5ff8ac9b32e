"""Fixtures of the outcomes API tests: identity's access log, and the two GPs' credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.access_log import AccessLogReader, open_access_log
from testkit.fixtures import IdentityService, Tokens, bearer

from .support import Metadata


@pytest.fixture
def access_log(identity_service: IdentityService) -> Iterator[AccessLogReader]:
    with open_access_log(
        identity_service.database_url,
        ("patient_id", "organisation_id", "action", "decision", "reason"),
    ) as log:
        yield log


@pytest.fixture(scope="module")
def jansen(tokens: Tokens) -> Metadata:
    """dr.jansen of gp-de-linde, the demo's coordinating practice."""
    return bearer(tokens.user("dr.jansen"))


@pytest.fixture(scope="module")
def devries(tokens: Tokens) -> Metadata:
    """dr.devries of gp-het-anker, another practice of the care group."""
    return bearer(tokens.user("dr.devries"))
