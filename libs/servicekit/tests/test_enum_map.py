"""servicekit.enums.EnumMap: proto enum <-> model values by naming convention."""

from __future__ import annotations

import enum

import pytest

from carenet.identity.v1 import identity_pb2 as pb
from servicekit.enums import EnumMap
from servicekit.errors import InvalidArgument


class Action(enum.StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"


class Category(enum.StrEnum):
    REFERRAL = "referral"
    CARE_PLAN = "care-plan"
    MEASUREMENTS = "measurements"
    PATIENT_RECORD = "patient-record"
    CONSENT = "consent"
    ACCESS_LOG = "access-log"


def test_maps_both_ways_by_name() -> None:
    actions = EnumMap(pb.Action, Action)
    assert dict(actions) == {
        pb.ACTION_READ: Action.READ,
        pb.ACTION_CREATE: Action.CREATE,
        pb.ACTION_UPDATE: Action.UPDATE,
    }
    categories = EnumMap(pb.DataCategory, Category)
    assert categories.required(pb.DATA_CATEGORY_CARE_PLAN, "c") is Category.CARE_PLAN
    assert categories.to_proto(Category.ACCESS_LOG) == pb.DATA_CATEGORY_ACCESS_LOG
    assert categories.to_proto("care-plan") == pb.DATA_CATEGORY_CARE_PLAN
    assert categories.to_proto(None) == 0 and categories.to_proto("") == 0


def test_request_values_unspecified_and_unknown() -> None:
    actions = EnumMap(pb.Action, Action)
    assert actions.from_proto(0, "action") is None
    with pytest.raises(InvalidArgument) as caught:
        actions.required(0, "action")
    assert caught.value.reason == "FIELD_REQUIRED"
    with pytest.raises(InvalidArgument) as caught:
        actions.from_proto(99, "action")
    assert caught.value.reason == "UNKNOWN_ENUM_VALUE"


def test_plain_strings_aliases_and_a_missing_value_fails_at_build() -> None:
    words = EnumMap(pb.Action, ["read", "create", "modify"], aliases={"modify": "ACTION_UPDATE"})
    assert words[pb.ACTION_UPDATE] == "modify" and words.to_proto("modify") == pb.ACTION_UPDATE
    with pytest.raises(LookupError, match="ACTION_DELETE"):
        EnumMap(pb.Action, ["read", "create", "update", "delete"])
    with pytest.raises(LookupError, match="ACTION_UPDATE"):
        EnumMap(pb.Action, ["read", "create"])
    assert len(EnumMap(pb.Action, ["read", "create"], unmapped=["ACTION_UPDATE"])) == 2
    with pytest.raises(LookupError):
        EnumMap(pb.Action, Action, aliases={"nothing": "ACTION_READ"})
