"""The umbrella chart rendered in a test (helm-python-sdk, no helm binary), for the tests of
a part the chart deploys: render with values, the production profile plus extra values, and
finding objects in what rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from testkit.idp import repo_root

CHART = repo_root(Path(__file__)) / "charts" / "carenet"


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the chart renders with ``values`` (release and namespace ``carenet``)."""
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    with helm.Chart.load(str(CHART)) as loaded:
        files = loaded.render(values, name="carenet", namespace="carenet")
    out: list[dict[str, Any]] = []
    for path, body in sorted(files.items()):
        if path.endswith(".yaml"):
            out += [o for o in yaml.safe_load_all(body) if isinstance(o, dict)]
    return out


def production(extra: dict[str, Any]) -> dict[str, Any]:
    """values-production.yaml with ``extra``'s top-level keys over it."""
    values: dict[str, Any] = yaml.safe_load((CHART / "values-production.yaml").read_text())
    return {**values, **extra}


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` named ``name`` (fails when there are none or several)."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def component(peer: dict[str, Any]) -> str | None:
    """The ``app.kubernetes.io/component`` a NetworkPolicy peer selects pods by."""
    labels: dict[str, str] = peer.get("podSelector", {}).get("matchLabels", {})
    return labels.get("app.kubernetes.io/component")
