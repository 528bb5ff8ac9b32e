"""Hypothesis strategies that build any request message from its protobuf descriptor.

Every field type is covered: strings, integers, enums (with out-of-range numbers), doubles,
bools, bytes, nested messages (recursion is cut off at a depth), repeated fields, maps,
oneofs, ``Timestamp`` and ``FieldMask``. Each field is plausible seven times in eight and
wild otherwise (see values.py); a message type seen in an answer is often sent back real,
with a field or two changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from .values import (
    DEMO_IDS,
    NOW,
    WORDS,
    Corpus,
    doubles,
    ints,
    shape_of,
    strings,
    timestamps,
    weighted,
)

MAX_DEPTH = 4
ONE_IN_EIGHT = st.integers(0, 7)


def _field_paths(descriptor: Descriptor, depth: int = 0) -> list[str]:
    paths: list[str] = []
    for f in descriptor.fields:
        paths.append(f.name)
        inner = f.message_type
        if (
            depth < 1
            and inner is not None
            and not f.is_repeated
            and not inner.full_name.startswith("google.protobuf.")
        ):
            paths += [f"{f.name}.{p}" for p in _field_paths(inner, depth + 1)]
    return paths


def _mask_paths(owner: Descriptor, corpus: Corpus) -> st.SearchStrategy[list[str]]:
    """Paths of the resource that travels with the mask, plus paths that name nothing."""
    known: list[str] = []
    for f in owner.fields:
        inner = f.message_type
        if inner is not None and inner.full_name not in (
            "google.protobuf.FieldMask",
            "google.protobuf.Timestamp",
        ):
            known += _field_paths(inner)
    path = st.one_of(
        st.sampled_from(known) if known else st.nothing(),
        st.sampled_from(["*", "", "name", "etag", "create_time", "a.b", "name.x", "NAME"]),
        strings(corpus),
    )
    return st.lists(path, max_size=5)


# ---------------------------------------------------------------- messages


def _is_synthetic(oneof: Any) -> bool:
    """proto3 ``optional`` puts a field in a one-field oneof named ``_<field>``."""
    fields = list(oneof.fields)
    return len(fields) == 1 and oneof.name == f"_{fields[0].name}"


_INT_FIELDS: dict[int, tuple[int, bool]] = {
    FieldDescriptor.TYPE_INT32: (32, True),
    FieldDescriptor.TYPE_SINT32: (32, True),
    FieldDescriptor.TYPE_SFIXED32: (32, True),
    FieldDescriptor.TYPE_INT64: (64, True),
    FieldDescriptor.TYPE_SINT64: (64, True),
    FieldDescriptor.TYPE_SFIXED64: (64, True),
    FieldDescriptor.TYPE_UINT32: (32, False),
    FieldDescriptor.TYPE_FIXED32: (32, False),
    FieldDescriptor.TYPE_UINT64: (64, False),
    FieldDescriptor.TYPE_FIXED64: (64, False),
}


# Which kind of resource a field names, when the field's name says so.
_FIELD_SHAPES = {
    "patient": "patients/*",
    "patients": "patients/*",
    "parent": "patients/*",
    "owner": "patients/*",
    "organisation": "organisations/*",
    "record_holder": "organisations/*",
    "owner_organisation": "organisations/*",
    "care_group": "organisations/*",
    "insurer": "organisations/*",
    "practice": "organisations/*",
    "referrer_organisation": "organisations/*",
    "target_organisation": "organisations/*",
    "responsible_organisation": "organisations/*",
    "actor_organisation": "organisations/*",
    "offer": "offers/*",
    "contract": "contracts/*",
    "report": "reports/*",
    "referral": "patients/*/referrals/*",
}


class MessageStrategies:
    """Builds (and caches) one strategy per message type and depth.

    Every field is *plausible* seven times in eight (a real name of the kind the field
    names, a value seen in an answer under the same field name, a valid enum number, a
    Timestamp near now) and *wild* otherwise (anything of its type; see above). So most
    requests are valid but for a field or two, and reach the code behind validation; and a
    message type seen in an answer is often a real one with a field or two changed.
    """

    def __init__(self, corpus: Corpus, hints: Mapping[tuple[str, str], str] | None = None) -> None:
        self.corpus = corpus
        self.hints = dict(hints or {})
        self._cache: dict[tuple[str, int], st.SearchStrategy[Message]] = {}
        self._shapes: dict[str, list[str]] = {}
        for name in corpus.names:
            self._shapes.setdefault(shape_of(name), []).append(name)

    def __repr__(self) -> str:
        return (
            f"MessageStrategies({len(self.corpus.names)} names, "
            f"{len(self.corpus.page_tokens)} page tokens, "
            f"{sum(map(len, self.corpus.instances.values()))} real messages)"
        )

    def message(self, descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
        key = (descriptor.full_name, depth)
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: self._build(descriptor, depth))
        return self._cache[key]

    # ------------------------------------------------------------ plausible values

    def names_shaped(self, shape: str) -> st.SearchStrategy[str]:
        real = self._shapes.get(shape, [])
        made = st.builds(
            lambda ids: "/".join(next(ids) if p == "*" else p for p in shape.split("/")),
            st.lists(st.sampled_from(DEMO_IDS), min_size=4, max_size=4).map(iter),
        )
        if real:
            return weighted((4, st.sampled_from(real)), (1, made))
        return made

    def plausible_string(self, f: FieldDescriptor, owner: Descriptor) -> st.SearchStrategy[str]:
        if f.name.endswith("page_token"):
            if not self.corpus.page_tokens:
                return st.just("")
            return weighted((3, st.just("")), (1, st.sampled_from(self.corpus.page_tokens)))
        if f.name == "request_id":
            return st.sampled_from(["", "fuzz-1", "fuzz-2", "fuzz-3"])
        if f.name.endswith("_id") and f.name not in ("client_id", "source_record_id"):
            return st.from_regex(r"[a-z][a-z0-9-]{2,20}", fullmatch=True)
        shape = self.hints.get((owner.full_name, f.name))
        if shape:
            return self.names_shaped(shape)
        seen = self.corpus.observed.get((f.name, "str"), ())
        if seen:
            return st.sampled_from(seen)
        if f.name in _FIELD_SHAPES:
            return self.names_shaped(_FIELD_SHAPES[f.name])
        return weighted(
            (3, st.sampled_from(WORDS)),
            (2, st.from_regex(r"[A-Za-z0-9 .-]{1,16}", fullmatch=True)),
            (1, st.text(max_size=12)),
        )

    def plausible_scalar(self, f: FieldDescriptor, owner: Descriptor) -> st.SearchStrategy[Any]:
        t = f.type
        if t == FieldDescriptor.TYPE_STRING:
            return self.plausible_string(f, owner)
        if t in _INT_FIELDS:
            seen = self.corpus.observed.get((f.name, "int"), ())
            small = st.integers(0, 50 if f.name == "page_size" else 100)
            return weighted((1, st.sampled_from(seen)), (1, small)) if seen else small
        if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            seen = self.corpus.observed.get((f.name, "float"), ())
            sane = st.floats(0, 500, width=32)
            return weighted((1, st.sampled_from(seen)), (1, sane)) if seen else sane
        if t == FieldDescriptor.TYPE_ENUM:
            assert f.enum_type is not None
            numbers = [v.number for v in f.enum_type.values]
            named = [n for n in numbers if n != 0] or numbers
            return weighted((4, st.sampled_from(named)), (1, st.just(0)))
        if t == FieldDescriptor.TYPE_BYTES:
            return st.binary(max_size=16)
        return self.wild_scalar(f)

    # ------------------------------------------------------------ wild values

    def wild_scalar(self, f: FieldDescriptor) -> st.SearchStrategy[Any]:
        t = f.type
        if t in _INT_FIELDS:
            bits, signed = _INT_FIELDS[t]
            return ints(bits, signed=signed)
        if t == FieldDescriptor.TYPE_STRING:
            return strings(self.corpus, f.name)
        if t == FieldDescriptor.TYPE_BYTES:
            return st.one_of(st.binary(max_size=64), st.binary(min_size=1000, max_size=20_000))
        if t == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if t == FieldDescriptor.TYPE_DOUBLE:
            return doubles(64)
        if t == FieldDescriptor.TYPE_FLOAT:
            return doubles(32)
        if t == FieldDescriptor.TYPE_ENUM:
            assert f.enum_type is not None
            known = [v.number for v in f.enum_type.values]
            return st.one_of(
                st.sampled_from(known),
                st.sampled_from([max(known) + 1, -1, 2**31 - 1, -(2**31)]),
                st.integers(-(2**31), 2**31 - 1),
            )
        raise NotImplementedError(f"field type {t} of {f.full_name}")

    # ------------------------------------------------------------ fields and messages

    def value(self, f: FieldDescriptor, owner: Descriptor, depth: int) -> st.SearchStrategy[Any]:
        if f.type != FieldDescriptor.TYPE_MESSAGE:
            return weighted((7, self.plausible_scalar(f, owner)), (1, self.wild_scalar(f)))
        message_type = f.message_type
        assert message_type is not None
        cls = GetMessageClass(message_type)
        name = message_type.full_name
        if name == "google.protobuf.Timestamp":
            near_now = st.builds(
                lambda s: (s, 0), st.integers(NOW - 2 * 365 * 86400, NOW + 2 * 365 * 86400)
            )
            return weighted((5, near_now), (1, timestamps())).map(
                lambda sn: cls(seconds=sn[0], nanos=sn[1])
            )
        if name == "google.protobuf.FieldMask":
            return _mask_paths(owner, self.corpus).map(lambda paths: cls(paths=paths))
        if depth >= MAX_DEPTH:
            return st.just(cls())
        return self.message(message_type, depth + 1)

    def _build(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        cls = GetMessageClass(descriptor)
        oneofs = [o for o in descriptor.oneofs if not _is_synthetic(o)]
        in_oneof = {f.name for o in oneofs for f in o.fields}
        plain = [f for f in descriptor.fields if f.name not in in_oneof]
        setters = [self._setter(f, descriptor, depth) for f in plain]
        # one oneof: nothing set (first, so that shrinking clears it) or one of its fields
        choices = [
            st.one_of(
                ABSENT,
                *(self._setter(f, descriptor, depth, always=True) for f in oneof.fields),
            )
            for oneof in oneofs
        ]

        @st.composite
        def build(draw: st.DrawFn) -> Message:
            msg = cls()
            for choice in choices:
                draw(choice)(msg)
            for setter in setters:
                draw(setter)(msg)
            return msg

        real = self.corpus.instances.get(descriptor.full_name, ())
        if not real:
            return build()
        changes = {
            f.name: self._setter(f, descriptor, depth, always=True) for f in descriptor.fields
        }

        originals = st.sampled_from(real)

        @st.composite
        def changed(draw: st.DrawFn) -> Message:
            msg = cls.FromString(draw(originals))
            for f in descriptor.fields:
                if draw(ONE_IN_EIGHT) == 7:
                    msg.ClearField(f.name)
                    draw(changes[f.name])(msg)
            return msg

        return weighted((1, build()), (2, changed()))

    def _setter(
        self, f: FieldDescriptor, owner: Descriptor, depth: int, *, always: bool = False
    ) -> st.SearchStrategy[Callable[[Message], None]]:
        """A strategy for a function that sets ``f`` on a message (or leaves it unset)."""
        if f.is_repeated:
            message_type = f.message_type
            if message_type is not None and message_type.GetOptions().map_entry:
                key_f = message_type.fields_by_name["key"]
                value_f = message_type.fields_by_name["value"]
                entries = st.dictionaries(
                    self.value(key_f, message_type, depth),
                    self.value(value_f, message_type, depth),
                    max_size=4,
                )
                return entries.map(lambda d: _set_map(f, d))
            element = self.value(f, owner, depth)
            few = st.lists(element, max_size=3 if depth < 2 else 2)
            if depth > 0:
                return few.map(lambda items: _set_repeated(f, items))
            # a request's own lists (rows, patients, enrolments) sometimes run long
            many = st.lists(element, min_size=5, max_size=40)
            return weighted((5, few), (1, many)).map(lambda items: _set_repeated(f, items))

        value = self.value(f, owner, depth)
        if always:
            return value.map(lambda v: _set_single(f, v))
        # absent first, so that shrinking removes fields; present seven times in eight
        present = value.map(lambda v: _set_single(f, v))
        return ONE_IN_EIGHT.flatmap(lambda i: present if i else ABSENT)


def _noop(_msg: Message) -> None:
    return None


ABSENT: st.SearchStrategy[Callable[[Message], None]] = st.just(_noop)


def _set_single(f: FieldDescriptor, value: Any) -> Callable[[Message], None]:
    def apply(msg: Message) -> None:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(msg, f.name).CopyFrom(value)
        else:
            setattr(msg, f.name, value)

    return apply


def _set_repeated(f: FieldDescriptor, items: Sequence[Any]) -> Callable[[Message], None]:
    def apply(msg: Message) -> None:
        target = getattr(msg, f.name)
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            for item in items:
                target.add().CopyFrom(item)
        else:
            target.extend(items)

    return apply


def _set_map(f: FieldDescriptor, entries: dict[Any, Any]) -> Callable[[Message], None]:
    assert f.message_type is not None
    value_f = f.message_type.fields_by_name["value"]

    def apply(msg: Message) -> None:
        target = getattr(msg, f.name)
        for k, v in entries.items():
            if value_f.type == FieldDescriptor.TYPE_MESSAGE:
                target[k].CopyFrom(v)
            else:
                target[k] = v

    return apply
