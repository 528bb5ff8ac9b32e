"""servicekit.versioned: the weak etag of a version and back, and a change raising the version."""

from __future__ import annotations

import datetime as dt

import pytest

from servicekit.versioned import VersionedColumns, version_of_etag, weak_etag


@pytest.mark.parametrize("version", [1, 2, 10, 123456789])
def test_the_etag_names_the_version(version: int) -> None:
    assert weak_etag(version) == f'W/"{version}"'
    assert version_of_etag(weak_etag(version)) == version
    assert version_of_etag(f'"{version}"') == version


@pytest.mark.parametrize("etag", ["", 'W/""', 'W/"x"', 'W/"-1"', 'W/"1.5"', 'W/"١"'])
def test_anything_else_names_no_version(etag: str) -> None:
    assert version_of_etag(etag) is None


def test_touch_raises_the_version_and_the_update_time() -> None:
    class Resource(VersionedColumns):
        pass

    resource = Resource()
    resource.version = 3
    now = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
    resource.touch(now)
    assert (resource.version, resource.update_time, resource.etag) == (4, now, 'W/"4"')
