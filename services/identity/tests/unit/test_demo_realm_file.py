"""Which realm export ``identity seed-demo`` reads its people directory from."""

from __future__ import annotations

from pathlib import Path

import pytest

from identity import demo


def _tree(root: Path, name: str) -> Path:
    path = root / "infra" / "keycloak" / name
    path.parent.mkdir(parents=True)
    path.write_text('{"users": []}', encoding="utf-8")
    return path


def test_the_demo_realm_is_found_above_the_origin(tmp_path: Path) -> None:
    realm = _tree(tmp_path, "demo-realm.json")
    deep = tmp_path / "services" / "identity"
    deep.mkdir(parents=True)
    assert demo.realm_file(origins=[deep]) == realm


def test_the_former_realm_file_name_is_not_read_any_more(tmp_path: Path) -> None:
    """carenet-realm.json was renamed demo-realm.json; a stale copy under the old name must
    not seed the directory."""
    _tree(tmp_path, "carenet-realm.json")
    with pytest.raises(FileNotFoundError):
        demo.realm_file(origins=[tmp_path])


def test_a_configured_file_wins(tmp_path: Path) -> None:
    assert demo.realm_file(str(tmp_path / "x.json"), origins=[tmp_path]) == tmp_path / "x.json"
