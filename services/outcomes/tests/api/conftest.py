"""Fixtures of the outcomes API tests that read identity's access log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine

from testkit.access_log import AccessLogReader
from testkit.fixtures import IdentityService


@pytest.fixture
def access_log(identity_service: IdentityService) -> Iterator[AccessLogReader]:
    log = AccessLogReader(
        create_engine(identity_service.database_url),
        ("patient_id", "organisation_id", "action", "decision", "reason"),
    )
    try:
        yield log
    finally:
        log.engine.dispose()
