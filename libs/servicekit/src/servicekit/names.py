"""Resource names (AIP-122): parse ``collection/{id}`` paths and check ids."""

from __future__ import annotations

import re

from servicekit.errors import InvalidArgument

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$")


def valid_id(value: str) -> bool:
    return bool(ID_PATTERN.fullmatch(value))


def parse(name: str, *collections: str, field: str = "name") -> tuple[str, ...]:
    """The ids in ``name`` for the pattern ``c1/{id1}/c2/{id2}/...``.

    >>> parse("patients/p1/consents/c1", "patients", "consents")
    ('p1', 'c1')
    """
    parts = name.split("/")
    pattern = "/".join(f"{c}/{{id}}" for c in collections)
    if len(parts) != 2 * len(collections) or any(
        parts[2 * i] != c for i, c in enumerate(collections)
    ):
        raise InvalidArgument.single(field, f"must look like {pattern}", "INVALID_RESOURCE_NAME")
    ids = tuple(parts[2 * i + 1] for i in range(len(collections)))
    if not all(ids) or any(len(i) > 128 or not re.fullmatch(r"[A-Za-z0-9._~-]+", i) for i in ids):
        raise InvalidArgument.single(field, f"must look like {pattern}", "INVALID_RESOURCE_NAME")
    return ids


def parse_one(name: str, collection: str, field: str = "name") -> str:
    return parse(name, collection, field=field)[0]


def optional_id(name: str, collection: str, field: str) -> str:
    """The id in ``collection/{id}``, or "" when ``name`` is empty."""
    return parse_one(name, collection, field=field) if name else ""
