"""The guides' and READMEs' examples run against a fresh demo platform per document, started
as ``make run`` starts it (tests/client/local_platform.py) on free ports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

LOADER = Path(__file__).resolve().parents[1] / "client" / "local_platform.py"


def local_platform() -> ModuleType:
    """tests/client/local_platform.py, loaded once under one name (shared with tests/client)."""
    name = "carenet_local_platform"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, LOADER)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
