"""Page tokens: authenticated (HMAC) before they are read, and typed when they are."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from servicekit import paging
from servicekit.config import ServiceSettings
from servicekit.errors import InvalidArgument

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


@dataclass
class Request:
    page_token: str = ""
    page_size: int = 0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def refused(call: Any, *args: Any, **kwargs: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        call(*args, **kwargs)
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    assert [v.field for v in caught.value.field_violations()] == ["page_token"]
    return caught.value


def test_a_token_made_here_is_read_back() -> None:
    fp = paging.fingerprint("rels", "p-0001")
    token = paging.next_token({"after": "r-9"}, fp, key=KEY)
    assert paging.decode_page_token(token, fp, key=KEY) == {"after": "r-9"}
    assert paging.decode_page_token("", fp, key=KEY) is None
    assert paging.next_token(None, fp, key=KEY) == ""


def test_a_forged_token_with_the_right_fingerprint_is_refused_before_it_is_read() -> None:
    """What anyone could build before: the position and the (public) fingerprint, unsigned."""
    fp = paging.fingerprint("log", "p-0001")
    payload = json.dumps({"p": {"after": "not a number"}, "f": fp}, sort_keys=True).encode()
    refused(paging.decode_page_token, b64(payload), fp, key=KEY)  # the old, unsigned format
    refused(paging.decode_page_token, b64(payload) + "." + b64(b"\0" * 32), fp, key=KEY)
    guessed = hmac.new(b"guess", payload, hashlib.sha256).digest()
    refused(paging.decode_page_token, b64(payload) + "." + b64(guessed), fp, key=KEY)


def test_a_token_under_another_key_is_refused() -> None:
    fp = paging.fingerprint("orgs")
    token = paging.next_token({"after": "gp-de-linde"}, fp, key=OTHER_KEY)
    refused(paging.decode_page_token, token, fp, key=KEY)


def test_an_altered_token_is_refused() -> None:
    fp = paging.fingerprint("orgs")
    token = paging.next_token({"after": 5}, fp, key=KEY)
    _payload, tag = token.split(".")
    altered = json.dumps({"f": fp, "p": {"after": 6}}, sort_keys=True).encode()
    refused(paging.decode_page_token, f"{b64(altered)}.{tag}", fp, key=KEY)
    for garbage in ("...", "a.b.c", "%%%.%%%", "é.é", "x" * 5000):
        refused(paging.decode_page_token, garbage, fp, key=KEY)


def test_a_token_for_other_filters_is_refused() -> None:
    token = paging.next_token({"after": "r-1"}, paging.fingerprint("rels", "p-0001"), key=KEY)
    error = refused(paging.decode_page_token, token, paging.fingerprint("rels", "p-0002"), key=KEY)
    assert "p-0001" not in error.message


@pytest.mark.parametrize(
    "position",
    [
        {"after": 5},  # a number where an id belongs
        {"after": ["r-1"]},
        {"after": None},
        {"after": "x" * (paging.MAX_STRING_LENGTH + 1)},
        {"after": "a\x00b"},  # PostgreSQL refuses NUL in text
        {"after": "\ud800"},  # a lone surrogate: not UTF-8
        {},  # a key missing
        {"after": "r-1", "id": "x"},  # a key too many
    ],
)
def test_a_position_of_the_wrong_shape_is_refused(position: dict[str, Any]) -> None:
    fp = paging.fingerprint("rels")
    token = paging.next_token(position, fp, key=KEY)
    refused(paging.decode_page_token, token, fp, key=KEY, schema={"after": str})


@pytest.mark.parametrize("value", [True, 2**63, -(2**63) - 1, 1.5, "7"])
def test_an_integer_position_must_be_a_64_bit_integer(value: Any) -> None:
    fp = paging.fingerprint("log")
    token = paging.next_token({"after": value}, fp, key=KEY)
    refused(paging.decode_page_token, token, fp, key=KEY, schema={"after": int})


def test_a_position_of_several_keys_is_checked_against_its_schema() -> None:
    fp = paging.fingerprint("reports", "c-1")
    schema = {"t": str, "id": str}
    good = paging.next_token({"t": "2024-01-01T00:00:00", "id": "r-1"}, fp, key=KEY)
    assert paging.decode_page_token(good, fp, key=KEY, schema=schema) == {
        "t": "2024-01-01T00:00:00",
        "id": "r-1",
    }
    bad = paging.next_token({"t": 20240101, "id": "r-1"}, fp, key=KEY)
    refused(paging.decode_page_token, bad, fp, key=KEY, schema=schema)


def test_paging_reads_the_position_with_the_types_of_its_schema() -> None:
    ints = paging.PositionKind({"after": int})
    with paging.signing_with(KEY):
        first = paging.Paging(Request(), "log", "p-1", position=ints)
        assert first.page.after(0) == 0
        token = first.token(paging.Page([41], {"after": 41}))
        again = paging.Paging(Request(page_token=token), "log", "p-1", position=ints)
        assert again.page.after(0) == 41
        # an int position where a str (the default schema) belongs, and the other way round
        refused(paging.Paging, Request(page_token=token), "log", "p-1")
        text = paging.Paging(Request(), "rels").token(paging.Page(["r-2"], {"after": "r-2"}))
        assert paging.Paging(Request(page_token=text), "rels").page.after() == "r-2"
        refused(paging.Paging, Request(page_token=text), "rels", position=ints)


def test_paging_checks_a_schema_of_several_keys() -> None:
    defs = paging.PositionKind({"c": str, "v": int})
    with paging.signing_with(KEY):
        token = paging.Paging(Request(), "defs").token(paging.Page([], {"c": "HBA1C", "v": "2"}))
        refused(paging.Paging, Request(page_token=token), "defs", position=defs)
        token = paging.Paging(Request(), "defs").token(paging.Page([], {"c": "HBA1C", "v": 2}))
        read = paging.Paging(Request(page_token=token), "defs", position=defs)
        assert read.page.position == {"c": "HBA1C", "v": 2}


def test_tokens_follow_the_key_of_the_call() -> None:
    fp = paging.fingerprint("orgs")
    with paging.signing_with(KEY):
        token = paging.next_token({"after": "a"}, fp)
        assert paging.decode_page_token(token, fp) == {"after": "a"}
    with paging.signing_with(OTHER_KEY):
        refused(paging.decode_page_token, token, fp)
    with paging.signing_with(None):  # no key configured: this process's random key
        refused(paging.decode_page_token, token, fp)
        local = paging.next_token({"after": "a"}, fp)
    assert paging.decode_page_token(local, fp) == {"after": "a"}


def test_a_page_token_key_shorter_than_32_bytes_is_refused_at_start() -> None:
    base = {
        "database_url": "postgresql+psycopg://x/y",
        "oidc_issuer": "http://i",
        "oidc_audience": "a",
    }
    with pytest.raises(ValidationError, match="page_token_key"):
        ServiceSettings.model_validate({**base, "page_token_key": "short"})
    settings = ServiceSettings.model_validate({**base, "page_token_key": "x" * 32})
    assert paging.key_from_setting(settings.page_token_key.get_secret_value()) == b"x" * 32
    assert ServiceSettings.model_validate(base).page_token_key.get_secret_value() == ""
    assert "x" * 32 not in repr(settings)


def test_the_reply_holds_the_converted_items_and_the_next_token() -> None:
    from carenet.identity.v1 import identity_pb2 as pb
    from carenet.identity.v1 import identity_service_pb2 as rpc

    with paging.signing_with(KEY):
        listing = paging.Paging(Request(), "orgs")
        page = paging.Page(["o-1", "o-2"], {"after": "o-2"})
        reply = listing.reply(
            rpc.ListOrganisationsResponse,
            "organisations",
            page,
            lambda org_id: pb.Organisation(name=f"organisations/{org_id}"),
        )
        assert [o.name for o in reply.organisations] == ["organisations/o-1", "organisations/o-2"]
        assert reply.next_page_token == listing.token(page) != ""
        last = listing.reply(
            rpc.ListOrganisationsResponse, "organisations", paging.Page([], None), str
        )
        assert last.next_page_token == ""
