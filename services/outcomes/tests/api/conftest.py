"""Fixtures of the outcomes API tests that read identity's access log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.access_log import AccessLogReader, open_access_log
from testkit.fixtures import IdentityService


@pytest.fixture
def access_log(identity_service: IdentityService) -> Iterator[AccessLogReader]:
    with open_access_log(
        identity_service.database_url,
        ("patient_id", "organisation_id", "action", "decision", "reason"),
    ) as log:
        yield log
