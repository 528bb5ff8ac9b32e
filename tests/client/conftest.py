"""The client tests run against the real services (processes on free ports, demo data as
``make run`` seeds it) and the real local issuer."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from testkit.idp import LocalIdp


def local_platform() -> ModuleType:
    """tests/client/local_platform.py, loaded once under one name (the docs tests use it too)."""
    name = "carenet_local_platform"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("local_platform.py")
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def platform(local_idp: LocalIdp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    lp = local_platform()
    template = lp.demo_template(local_idp, tmp_path_factory)
    with lp.running_platform(local_idp, tmp_path_factory.mktemp("client") / "run", template) as p:
        yield p


@pytest.fixture(scope="session")
def lp() -> ModuleType:
    """tests/client/local_platform.py (starting platforms, copying the demo databases)."""
    return local_platform()
