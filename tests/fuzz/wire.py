"""Request bodies at the level of the wire format: fields a message does not declare, and
bodies that are not a valid encoding of the request (random bytes, classic malformed
encodings, valid encodings cut, flipped or extended)."""

from __future__ import annotations

import functools

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import strategies as st

from .strategies import MessageStrategies


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return varint((number << 3) | wire_type)


@functools.cache
def unknown_fields(descriptor: Descriptor) -> st.SearchStrategy[bytes]:
    """Well-formed fields whose numbers the message does not declare (forward compatibility:
    a newer client may send them; they must be ignored)."""
    used = {f.number for f in descriptor.fields}
    top = max(used, default=0)
    numbers = st.sampled_from(
        [n for n in (top + 1, top + 2, 99, 1000, 18_999, 536_870_911) if n not in used]
    )
    one = st.one_of(
        st.builds(lambda n, v: _tag(n, 0) + varint(v), numbers, st.integers(0, 2**64 - 1)),
        st.builds(lambda n, b: _tag(n, 1) + b, numbers, st.binary(min_size=8, max_size=8)),
        st.builds(lambda n, b: _tag(n, 2) + varint(len(b)) + b, numbers, st.binary(max_size=100)),
        st.builds(lambda n, b: _tag(n, 5) + b, numbers, st.binary(min_size=4, max_size=4)),
    )
    return st.lists(one, max_size=3).map(b"".join)


def raw_bodies(descriptor: Descriptor, messages: MessageStrategies) -> st.SearchStrategy[bytes]:
    """Request bodies as bytes: random bytes, classic malformed encodings (a varint cut
    short, a length beyond the end, invalid UTF-8 in a string field, a wire type that does
    not match the field), and valid encodings cut, flipped or extended."""
    string_fields = [f.number for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING]
    message_fields = [f.number for f in descriptor.fields if f.type == FieldDescriptor.TYPE_MESSAGE]
    numbers = [f.number for f in descriptor.fields] or [1]
    invalid_utf8 = st.sampled_from([b"\xc3\x28", b"\xff", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"])
    classics: list[st.SearchStrategy[bytes]] = [
        st.sampled_from(
            [
                b"\x08",  # a varint tag with no value
                b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # an 11-byte varint
                b"\x0a\xff\xff\xff\xff\x0f",  # a length far beyond the end
                b"\x0a\x05ab",  # a length beyond the end
                b"\x00",  # field number 0
                b"\x07",  # wire type 7 does not exist
                b"\x0b\x0c",  # deprecated groups
                b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            ]
        ),
        st.builds(
            lambda n, wt: _tag(n, wt) + b"\x01\x02\x03\x04\x05\x06\x07\x08",
            st.sampled_from(numbers),
            st.sampled_from([0, 1, 3, 4, 5]),
        ),
    ]
    if string_fields:
        classics.append(
            st.builds(
                lambda n, bad, pre: _tag(n, 2) + varint(len(pre + bad)) + pre + bad,
                st.sampled_from(string_fields),
                invalid_utf8,
                st.sampled_from([b"", b"patients/p-0001", b"x"]),
            )
        )
    if message_fields:
        # a nested message whose own encoding is broken
        classics.append(
            st.builds(
                lambda n, inner: _tag(n, 2) + varint(len(inner)) + inner,
                st.sampled_from(message_fields),
                st.sampled_from([b"\x08", b"\x0a\xff\x01", b"\x0a\x02\xc3\x28", b"\x07"]),
            )
        )

    valid = messages.message(descriptor).map(lambda m: m.SerializeToString())

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(valid))
        if not data:
            return bytes(draw(st.binary(min_size=1, max_size=16)))
        op = draw(st.sampled_from(["cut", "flip", "insert", "append"]))
        at = draw(st.integers(0, len(data) - 1))
        if op == "cut":
            return bytes(data[:at])
        if op == "flip":
            data[at] ^= draw(st.integers(1, 255))
            return bytes(data)
        if op == "insert":
            return bytes(data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:])
        return bytes(data + draw(st.binary(min_size=1, max_size=8)))

    return st.one_of(st.binary(min_size=1, max_size=512), *classics, mutated())
