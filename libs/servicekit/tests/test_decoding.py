"""servicekit.decoding's quick NUL check agrees with the walk that names the fields."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.message import Message

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.referral.v1 import referral_pb2 as referral_pb
from carenet.referral.v1 import referral_service_pb2 as referral_rpc
from servicekit import decoding


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _messages() -> list[Message]:
    profile = referral_pb.PatientProfile(age=55, bmi=31.0, postcode="5612")
    return [
        rpc.BatchAuthorizeRequest(patients=["patients/p-0001"], purpose="fine"),
        rpc.BatchAuthorizeRequest(patients=["patients/p-0001", "patients/p\x00"]),
        rpc.BatchAuthorizeRequest(subject=pb.Subject(user="u", roles=["gp", "x\x00"])),
        rpc.BatchAuthorizeRequest(subject=pb.Subject(user="u\x00")),
        referral_rpc.CreateReferralRequest(
            parent="patients/p-0001",
            referral=referral_pb.Referral(offer="offers/o", reason="r", profile=profile),
        ),
        referral_rpc.CreateReferralRequest(
            referral=referral_pb.Referral(reason="r\x00", profile=profile)
        ),
        _struct({"ok": "x", "nested": {"deep": "z", "list": ["a", {"b": "c"}]}}),
        _struct({"ok": "x", "bad\x00key": "y"}),
        _struct({"nested": {"deep": "z\x00"}}),
        _struct({"list": ["a", {"b": "c\x00"}]}),
    ]


def test_has_nul_is_true_exactly_when_the_walk_names_a_field() -> None:
    found = [decoding.has_nul(m) for m in _messages()]
    assert found == [bool(decoding.nul_violations(m)) for m in _messages()]
    assert found == [False, True, True, True, False, True, False, True, True, True]


def test_a_body_with_zero_bytes_only_in_its_numbers_is_decoded() -> None:
    """A double's zero bytes make the body hold zero bytes; no string holds a NUL."""
    request = _messages()[4]
    body = request.SerializeToString()
    assert b"\x00" in body
    deserialize = decoding.tolerant(referral_rpc.CreateReferralRequest.FromString)
    assert deserialize is not None
    assert deserialize(body) == request
