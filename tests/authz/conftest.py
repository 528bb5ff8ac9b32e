"""Fixtures of the authorization oracle: the four services as real servers (servers.py)
behind testkit's OIDC issuer, and the facts the table is about, set up once (facts.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.fixtures import Tokens
from testkit.idp import LocalIdp

from .facts import Callers, Facts
from .servers import Platform, running_platform


@pytest.fixture(scope="session")
def platform(local_idp: LocalIdp) -> Iterator[Platform]:
    with running_platform(local_idp) as running:
        yield running


@pytest.fixture(scope="session")
def facts(platform: Platform, tokens: Tokens) -> Facts:
    world = Facts(platform, Callers(tokens))
    world.build()
    return world
