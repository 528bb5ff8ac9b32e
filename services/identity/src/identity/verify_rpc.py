"""VerifyAccessLog's request and answer: the range asked (``since_checkpoint``), the entry
limit and page token of a walk that goes on over several calls, and what was covered."""

from __future__ import annotations

import re

from carenet.identity.v1 import identity_service_pb2 as rpc
from identity.access_log_verify import Resume, Scope, Verification
from identity.models import MAX_LOG_STRIPES
from servicekit.auth import current_principal
from servicekit.errors import InvalidArgument
from servicekit.paging import Page, Paging, Position, PositionKind
from servicekit.timestamps import to_proto

MAX_CHECKPOINT_NAME = 200

_HEAD = re.compile(r"[0-9a-f]{64}")


def _valid(position: Position) -> bool:
    return (
        0 <= position["stripe"] < MAX_LOG_STRIPES
        and position["after"] >= -1
        and (
            position["head"] == ""
            if position["after"] < 1
            else bool(_HEAD.fullmatch(position["head"]))
        )
        and position["keyed"] in (0, 1)
        and position["dedicated"] in (0, 1)
    )


# Where a walk cut short goes on (identity.access_log_verify.Resume); "after" -1: at the
# start of the stripe's range. Only this server makes such a token (it is authenticated).
RESUME = PositionKind(
    {"stripe": int, "after": int, "head": str, "keyed": int, "dedicated": int}, _valid
)


def verify_scope(request: rpc.VerifyAccessLogRequest, max_entries: int) -> tuple[Scope, Paging]:
    """The scope a request asks for, and its paging (INVALID_ARGUMENT naming the field for a
    malformed checkpoint name, a negative page size or a page token not made for it: for
    another range, or handed out to another caller)."""
    since = request.since_checkpoint
    if len(since) > MAX_CHECKPOINT_NAME or not since.isprintable():
        raise InvalidArgument.single(
            "since_checkpoint",
            f"a checkpoint's name: at most {MAX_CHECKPOINT_NAME} printable characters",
            "INVALID_CHECKPOINT_NAME",
        )
    caller = current_principal()
    paging = Paging(
        request,
        "verify",
        since,
        # the walk's caller: a token another caller replays (another person, another client,
        # a delegate acting for someone else) is refused as a token made for other filters
        caller.subject,
        caller.client_id,
        caller.on_behalf_of,
        position=RESUME,
        default=max_entries,
        maximum=max_entries,
    )
    position = paging.page.position
    resume = (
        Resume(
            position["stripe"],
            position["after"],
            position["head"],
            bool(position["keyed"]),
            bool(position["dedicated"]),
        )
        if position
        else None
    )
    return Scope(since, paging.page.size, resume), paging


def _position(resume: Resume | None) -> Position | None:
    if resume is None:
        return None
    return {
        "stripe": resume.stripe,
        "after": resume.sequence,
        "head": resume.head if resume.sequence >= 1 else "",
        "keyed": int(resume.keyed),
        "dedicated": int(resume.dedicated),
    }


def verify_response(result: Verification, paging: Paging) -> rpc.VerifyAccessLogResponse:
    return rpc.VerifyAccessLogResponse(
        intact=result.intact,
        entries_checked=result.checked,
        first_broken_entry=f"accessLogEntries/{result.first_broken}" if result.first_broken else "",
        broken_stripes=list(result.broken_stripes),
        problems=[
            rpc.AccessLogProblem(
                stripe=p.stripe,
                reason=p.reason,
                sequence=p.sequence,
                entry=f"accessLogEntries/{p.entry_id}" if p.entry_id else "",
                checkpoint=p.checkpoint,
            )
            for p in result.problems
        ],
        legacy_entries=result.legacy_entries,
        checkpoints_verified=result.checkpoints_verified,
        latest_checkpoint_time=to_proto(result.latest_checkpoint_time),
        checkpoint_store_configured=result.checkpoint_store,
        coverage=[
            rpc.AccessLogCoverage(
                stripe=c.stripe,
                from_sequence=c.from_sequence,
                to_sequence=c.to_sequence,
                to_end=c.to_end,
            )
            for c in result.coverage
        ],
        since_checkpoint=result.since,
        next_page_token=paging.token(Page((), _position(result.resume))),
        latest_checkpoint=result.latest_checkpoint,
    )
