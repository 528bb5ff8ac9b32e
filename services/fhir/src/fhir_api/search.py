"""Search parameters and searchset Bundles.

A search names the patient as ``p-1``, ``Patient/p-1`` or an absolute URL ending in
``Patient/p-1``; all three mean the same patient. Paging follows the services' own page
tokens (signed by the service that issued them, bound to the same filters): the next link
repeats the search with ``_page_token``. Unknown parameters are refused (400) rather than
ignored, so a client never mistakes an unfiltered answer for a filtered one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from fhir_api.errors import FhirError, invalid
from fhir_api.resources.common import Json

ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$")
JSON_MIME_TYPES = ("application/fhir+json", "application/json", "application/*", "*/*")
ALWAYS_ALLOWED = {"_count", "_page_token", "_format", "_include"}
JSON_FORMATS = {"json", "application/json", "application/fhir+json"}


@dataclass(frozen=True)
class Search:
    """A parsed search: its filters, page size and page token."""

    params: dict[str, str]
    count: int
    page_token: str
    includes: tuple[str, ...]

    def get(self, name: str) -> str:
        return self.params.get(name, "")


def check_format(value: str) -> None:
    """``_format`` names JSON (or is absent): this API serves nothing else."""
    if value and value not in JSON_FORMATS:
        raise FhirError(406, "not-supported", "FORMAT_NOT_SUPPORTED", "only JSON is served")


def token_codes(value: str, system: str, param: str) -> list[str]:
    """The codes a token parameter asks for: ``code`` or ``system|code``, comma-separated
    for any of them (FHIR's OR); a system other than ``system`` is refused."""
    codes = []
    for part in value.split(","):
        given, bar, code = part.rpartition("|")
        if bar and given and given != system:
            raise invalid("INVALID_STATUS", f"{param}: codes of {system} only")
        if not code:
            raise invalid("INVALID_STATUS", f"{param}: a code is expected")
        codes.append(code)
    return codes


def reference_id(value: str, resource_type: str, param: str) -> str:
    """The id a reference parameter names (bare id, ``Type/id`` or an absolute URL)."""
    _, _, tail = value.rpartition(f"{resource_type}/")
    candidate = tail if tail else value
    if "/" in candidate or not ID.fullmatch(candidate):
        raise invalid("INVALID_REFERENCE", f"{param}: not a {resource_type} reference")
    return candidate


def parse(
    args: Mapping[str, Sequence[str]],
    allowed: Mapping[str, str],
    includes: Sequence[str],
    *,
    default_count: int,
    max_count: int,
) -> Search:
    params: dict[str, str] = {}
    for name, values in args.items():
        if name not in allowed and name not in ALWAYS_ALLOWED:
            raise invalid(
                "UNKNOWN_SEARCH_PARAMETER",
                "a parameter this search does not take (see the CapabilityStatement)",
            )
        if name != "_include" and len(values) > 1:
            raise invalid("REPEATED_SEARCH_PARAMETER", f"{name}: given more than once")
        if name != "_include":
            params[name] = values[0]
    check_format(params.get("_format", ""))
    asked = tuple(args.get("_include", ()))
    for include in asked:
        if include not in includes:
            raise invalid(
                "INCLUDE_NOT_SUPPORTED",
                "_include: a value this search does not take (see the CapabilityStatement)",
            )
    count = default_count
    if "_count" in params:
        try:
            count = int(params["_count"])
        except ValueError:
            raise invalid("INVALID_COUNT", "_count: not a whole number") from None
        if count < 1:
            raise invalid("INVALID_COUNT", "_count: must be at least 1")
        count = min(count, max_count)
    token = params.pop("_page_token", "")
    params.pop("_count", None)
    params.pop("_format", None)
    return Search(params=params, count=count, page_token=token, includes=asked)


def bundle(
    base_url: str,
    resource_type: str,
    search: Search,
    matches: Sequence[Json],
    included: Sequence[Json],
    next_token: str,
) -> Json:
    def link(token: str) -> str:
        query = dict(search.params)
        query["_count"] = str(search.count)
        pairs = list(query.items()) + [("_include", i) for i in search.includes]
        if token:
            pairs.append(("_page_token", token))
        return f"{base_url}/{resource_type}?{urlencode(pairs)}"

    links = [{"relation": "self", "url": link(search.page_token)}]
    if next_token:
        links.append({"relation": "next", "url": link(next_token)})

    def entry(resource: Json, mode: str) -> Json:
        return {
            "fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": mode},
        }

    entries = [entry(r, "match") for r in matches] + [entry(r, "include") for r in included]
    found: Json = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if entries:  # FHIR allows no empty arrays
        found["entry"] = entries
    return found
