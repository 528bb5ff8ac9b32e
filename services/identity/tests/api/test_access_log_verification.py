"""VerifyAccessLog over a real server whose log has chain keys and a checkpoint store: an
auditor learns which stripe is broken and why, and nothing about any patient."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.access_log_checkpoints import publish_checkpoint
from identity.config import Settings
from identity.main import deps_for
from identity.server import create_server
from servicekit.auth import verifier_for
from servicekit.db import make_engine
from servicekit.migrations import upgrade
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.rpc import serving

from ..log_keys import PEPPER, KeyFiles, append, cut_stripe, superuser, without_triggers
from .calls import fails


@contextmanager
def _keyed_server(
    tmp_path: Path, local_idp: LocalIdp, max_entries: int = 200_000
) -> Iterator[tuple[rpc_grpc.IdentityServiceStub, str]]:
    with fresh_database("identity_verify_api") as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        keys = KeyFiles(tmp_path)
        keys.add_chain_key("chain-1")
        keys.add_signing_key("sign-1")
        trust = keys.trust("chain-1", "sign-1")
        trust.verify_max_entries = max_entries
        deps = deps_for(engine, PEPPER, log_stripes=2, access_log=trust)
        append(deps, 0, 6)
        append(deps, 1, 4)
        publish_checkpoint(deps.log_trust(), deps.uow, deps.clock)
        append(deps, 0, 2)
        settings = Settings(
            database_url=url,
            oidc_issuer=local_idp.issuer,
            grpc_host="127.0.0.1",
            grpc_port=0,
            bsn_pepper=PEPPER.decode(),  # type: ignore[arg-type]
        )
        running = create_server(settings, deps, verifier_for(settings))
        try:
            with serving(running) as channel:
                yield rpc_grpc.IdentityServiceStub(channel), url
        finally:
            engine.dispose()


@pytest.fixture
def keyed_server(
    tmp_path: Path, local_idp: LocalIdp
) -> Iterator[tuple[rpc_grpc.IdentityServiceStub, str]]:
    """A server whose stripes 0 and 1 hold 6 and 4 entries, a checkpoint of them, then 2
    more entries on stripe 0."""
    with _keyed_server(tmp_path, local_idp) as server:
        yield server


@pytest.fixture
def limited_server(
    tmp_path: Path, local_idp: LocalIdp
) -> Iterator[tuple[rpc_grpc.IdentityServiceStub, str]]:
    """The same log, on a server that checks at most 5 entries a call."""
    with _keyed_server(tmp_path, local_idp, max_entries=5) as server:
        yield server


def test_verify_access_log_names_the_stripe_and_the_reason_of_a_deleted_tail(
    keyed_server: tuple[rpc_grpc.IdentityServiceStub, str], tokens: Tokens
) -> None:
    stub, url = keyed_server
    auditor = bearer(tokens.user("auditor.dekker"))
    intact = stub.VerifyAccessLog(rpc.VerifyAccessLogRequest(), metadata=auditor, timeout=30)
    assert intact.intact
    assert intact.entries_checked == 12
    assert intact.checkpoints_verified == 1
    assert intact.checkpoint_store_configured
    assert intact.HasField("latest_checkpoint_time")
    assert not intact.problems
    with superuser(url) as conn:
        without_triggers(conn)
        cut_stripe(conn, 1, keep=2)
        conn.commit()
    broken = stub.VerifyAccessLog(rpc.VerifyAccessLogRequest(), metadata=auditor, timeout=30)
    assert not broken.intact
    assert list(broken.broken_stripes) == [1]
    [problem] = broken.problems
    assert problem.HasField("stripe") and problem.stripe == 1
    assert problem.reason == "TAIL_DELETED"
    assert problem.sequence == 4
    assert problem.checkpoint.startswith("checkpoint-")
    assert problem.entry == ""
    # Positions and checkpoint names only: no patient, user or organisation.
    for identifying in (b"p-0001", b"gp-user", b"gp-de-linde", b"cg-zuidoost"):
        assert identifying not in broken.SerializeToString()


def test_only_auditors_and_care_group_admins_may_verify(
    keyed_server: tuple[rpc_grpc.IdentityServiceStub, str], tokens: Tokens
) -> None:
    stub, _url = keyed_server
    with pytest.raises(grpc.RpcError) as refused:
        stub.VerifyAccessLog(
            rpc.VerifyAccessLogRequest(), metadata=bearer(tokens.user("dr.jansen")), timeout=30
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def _coverage(answer: rpc.VerifyAccessLogResponse) -> dict[int, tuple[int, int, bool]]:
    return {
        c.stripe: (c.from_sequence, c.to_sequence, c.to_end)
        for c in answer.coverage
        if c.from_sequence or c.to_sequence
    }


def test_a_range_since_a_checkpoint_says_what_it_covered(
    keyed_server: tuple[rpc_grpc.IdentityServiceStub, str], tokens: Tokens
) -> None:
    stub, url = keyed_server
    auditor = bearer(tokens.user("auditor.dekker"))
    full = stub.VerifyAccessLog(rpc.VerifyAccessLogRequest(), metadata=auditor, timeout=30)
    assert full.since_checkpoint == "" and not full.next_page_token
    assert _coverage(full) == {0: (0, 8, True), 1: (0, 4, True)}
    checkpoint = full.latest_checkpoint
    assert checkpoint.startswith("checkpoint-")
    request = rpc.VerifyAccessLogRequest(since_checkpoint=checkpoint)
    ranged = stub.VerifyAccessLog(request, metadata=auditor, timeout=30)
    assert ranged.intact and ranged.entries_checked == 2
    assert ranged.since_checkpoint == checkpoint and not ranged.next_page_token
    assert _coverage(ranged) == {0: (6, 8, True), 1: (4, 4, True)}
    assert len(ranged.coverage) == 64
    # A stripe cut below the checkpoint is found from the range.
    with superuser(url) as conn:
        without_triggers(conn)
        cut_stripe(conn, 1, keep=2)
        conn.commit()
    broken = stub.VerifyAccessLog(request, metadata=auditor, timeout=30)
    assert [(p.stripe, p.reason, p.sequence, p.checkpoint) for p in broken.problems] == [
        (1, "TAIL_DELETED", 4, checkpoint)
    ]


def test_a_walk_goes_on_by_page_token_within_the_servers_limit(
    limited_server: tuple[rpc_grpc.IdentityServiceStub, str], tokens: Tokens
) -> None:
    stub, _url = limited_server
    auditor = bearer(tokens.user("auditor.dekker"))
    answers = [stub.VerifyAccessLog(rpc.VerifyAccessLogRequest(page_size=500), metadata=auditor)]
    while answers[-1].next_page_token:
        request = rpc.VerifyAccessLogRequest(page_token=answers[-1].next_page_token)
        answers.append(stub.VerifyAccessLog(request, metadata=auditor, timeout=30))
        assert len(answers) < 10
    # Capped at the server's 5, not the 500 asked for.
    assert [a.entries_checked for a in answers] == [5, 5, 2]
    assert all(a.intact for a in answers)
    assert _coverage(answers[0]) == {0: (0, 5, False)}
    assert _coverage(answers[1]) == {0: (5, 8, True), 1: (0, 2, False)}
    assert _coverage(answers[2]) == {1: (2, 4, True)}
    # A page token goes on only the range it was made for.
    other = rpc.VerifyAccessLogRequest(
        since_checkpoint=answers[0].latest_checkpoint, page_token=answers[0].next_page_token
    )
    refused = fails(stub.VerifyAccessLog, other, auditor)
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )


@pytest.mark.parametrize(
    ("request_", "field", "reason"),
    [
        (
            rpc.VerifyAccessLogRequest(since_checkpoint="checkpoint-nobody-published.json"),
            "since_checkpoint",
            "CHECKPOINT_NOT_VERIFIED",
        ),
        (
            rpc.VerifyAccessLogRequest(since_checkpoint="checkpoint\n.json"),
            "since_checkpoint",
            "INVALID_CHECKPOINT_NAME",
        ),
        (
            rpc.VerifyAccessLogRequest(since_checkpoint="c" * 201),
            "since_checkpoint",
            "INVALID_CHECKPOINT_NAME",
        ),
        (rpc.VerifyAccessLogRequest(page_size=-1), "page_size", "INVALID_PAGE_SIZE"),
        (rpc.VerifyAccessLogRequest(page_token="e30.AAAA"), "page_token", "INVALID_PAGE_TOKEN"),
    ],
    ids=["unknown-checkpoint", "control-character", "too-long", "negative-size", "forged-token"],
)
def test_a_bad_range_is_invalid_argument_naming_the_field(
    keyed_server: tuple[rpc_grpc.IdentityServiceStub, str],
    tokens: Tokens,
    request_: rpc.VerifyAccessLogRequest,
    field: str,
    reason: str,
) -> None:
    stub, _url = keyed_server
    refused = fails(stub.VerifyAccessLog, request_, bearer(tokens.user("auditor.dekker")))
    assert (refused.code, refused.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert [violation[0] for violation in refused.field_violations] == [field]


def test_who_may_verify_is_decided_before_the_range_is_looked_up(
    keyed_server: tuple[rpc_grpc.IdentityServiceStub, str], tokens: Tokens
) -> None:
    stub, _url = keyed_server
    request = rpc.VerifyAccessLogRequest(since_checkpoint="checkpoint-nobody-published.json")
    refused = fails(stub.VerifyAccessLog, request, bearer(tokens.user("dr.jansen")))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED


def test_a_walk_goes_on_only_for_the_caller_it_was_handed_to(
    limited_server: tuple[rpc_grpc.IdentityServiceStub, str], tokens: Tokens
) -> None:
    """A page token is bound to its caller: replayed by another care group's admin or by the
    auditor it is refused as a tampered token is; its own caller goes on."""
    stub, _url = limited_server
    zuidoost = bearer(tokens.user("admin.zuidoost"))
    first = stub.VerifyAccessLog(rpc.VerifyAccessLogRequest(), metadata=zuidoost, timeout=30)
    assert first.entries_checked == 5 and first.next_page_token
    replay = rpc.VerifyAccessLogRequest(page_token=first.next_page_token)
    for other in ("admin.noord", "auditor.dekker"):
        refused = fails(stub.VerifyAccessLog, replay, bearer(tokens.user(other)))
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAGE_TOKEN",
        ), other
        assert [violation[0] for violation in refused.field_violations] == ["page_token"]
    resumed = stub.VerifyAccessLog(replay, metadata=zuidoost, timeout=30)
    assert resumed.entries_checked == 5 and resumed.intact
    assert _coverage(resumed) == {0: (5, 8, True), 1: (0, 2, False)}
