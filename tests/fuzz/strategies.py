"""Hypothesis strategies that build any request message from its protobuf descriptor, and raw
request bodies that are (mostly) not a valid encoding of any message.

Every field type is covered: strings (real resource names of the seeded platform, names that
only look valid, garbage, very long ones), integers at and beyond their edges, enums with
out-of-range numbers, doubles with NaN and infinities, bytes, nested messages (recursion is
cut off at a depth), repeated fields, maps, oneofs, ``Timestamp`` values out of the range
``google.protobuf`` allows, ``FieldMask`` paths of the resource in the same request, and
unknown fields appended to the encoding.
"""

from __future__ import annotations

import base64
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

MAX_DEPTH = 4

# The seconds range google.protobuf.Timestamp allows: 0001-01-01 to 9999-12-31T23:59:59.
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799

COLLECTIONS = (
    "patients",
    "organisations",
    "offers",
    "contracts",
    "reports",
    "indicators",
    "accessLogEntries",
)
SUB_COLLECTIONS = (
    "referrals",
    "careRelationships",
    "consents",
    "enrolments",
    "measurements",
    "carePlan",
    "revisions",
    "costs",
    "versions",
)
DEMO_IDS = (
    "p-0001",
    "p-0002",
    "p-0003",
    "p-9999",
    "p-noord-1",
    "cg-zuidoost",
    "cg-noord",
    "gp-de-linde",
    "gp-het-anker",
    "hosp-catharina",
    "gm-eindhoven",
    "gli-beweegfit",
    "ins-vgz",
    "lab-eindhoven",
    "gli-beweegfit-cool",
    "vgz-zuidoost-2025",
    "DM2_HBA1C_MEASURED",
    "DM2_HBA1C_AT_TARGET",
    "1",
    "0",
    "-1",
)
# Values that some field somewhere means: codes, users, clients, BSNs (test numbers that pass
# the 11-test, and ones that do not), identifiers of the Dutch registers.
WORDS = (
    "HBA1C",
    "BMI",
    "SBP",
    "FEV1",
    "mmol/mol",
    "kg/m2",
    "T90",
    "T90.02",
    "ICPC-1",
    "R95",
    "dm2",
    "copd",
    "nl",
    "en",
    "GM0772",
    "5612",
    "5612AB",
    "111222333",
    "123456782",
    "999990019",
    "12345678",
    "123456789",
    "01012345",
    "7095",
    "dr.jansen",
    "dr.devries",
    "admin.zuidoost",
    "svc-referral",
    "svc-careplan",
    "svc-outcomes",
    "carenet-kis",
    "age",
    "bmi",
    "conditions",
    "ge",
    "any-of",
    "WEEKLY",
    "EUR",
    "basic-insurance",
    "treatment",
    "1.5",
    "-0",
    "NaN",
    "1e309",
)
ODD_STRINGS = (
    "",
    " ",
    "\x00",
    "\t\n",
    "/",
    "//",
    "patients/",
    "patients//x",
    "patients/p-0001/",
    "patients/p-0001/referrals/",
    "patients/../organisations/cg-zuidoost",
    "patients/p-0001?x=1",
    "PATIENTS/P-0001",
    "patients/p-0001 ",
    "organisations/*",
    "*",
    "-",
    "%",
    "%00",
    "'",
    "' OR '1'='1",
    '"',
    "\\",
    "{}",
    "[]",
    "null",
    "\u202eevil",
    "\ufeff",
    "\U0001f600",
    "é",
    "e\u0301",
)


@dataclass(frozen=True)
class Corpus:
    """Values read from the running platform.

    ``names``: real resource names; ``page_tokens``: real page tokens; ``observed``: scalar
    values seen in answers, by (field name, kind), e.g. ``("code", "str") -> ("HBA1C", ...)``;
    ``instances``: real messages seen in answers, serialized, by message type (a real offer,
    care plan or contract to start from and change a field or two of).
    """

    names: tuple[str, ...] = ()
    page_tokens: tuple[str, ...] = ()
    observed: Mapping[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    instances: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)


def shape_of(name: str) -> str:
    """``patients/p-0001/referrals/r1`` -> ``patients/*/referrals/*``."""
    parts = name.split("/")
    return "/".join(p if i % 2 == 0 else "*" for i, p in enumerate(parts))


def shape_of_pattern(pattern: str) -> str:
    """``patients/{patient}/carePlan`` -> ``patients/*/carePlan``."""
    return "/".join("*" if p.startswith("{") else p for p in pattern.split("/"))


def parent_shape(shape: str) -> str:
    """``patients/*/referrals/*`` -> ``patients/*``; ``patients/*/carePlan`` -> ``patients/*``."""
    parts = shape.split("/")
    return "/".join(parts[:-2] if parts[-1] == "*" else parts[:-1])


# ---------------------------------------------------------------- scalars


def _ints(bits: int, *, signed: bool) -> st.SearchStrategy[int]:
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    edges = sorted(
        {
            v
            for v in (0, 1, -1, 2, 9, 10, 50, 100, 999, 1000, 1001, 5000, 10**6, lo, hi, lo + 1)
            if lo <= v <= hi
        }
    )
    return st.one_of(
        st.integers(max(lo, -3), min(hi, 1100)),
        st.sampled_from(edges),
        st.integers(lo, hi),
    )


def _doubles(width: int) -> st.SearchStrategy[float]:
    edges = [0.0, -0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf]
    if width == 64:
        edges += [1e308, -1e308, 5e-324, 9.007199254740993e15]
    return st.one_of(
        st.floats(-1000, 1000, width=width),  # type: ignore[arg-type]
        st.sampled_from(edges),
        st.floats(width=width),  # type: ignore[arg-type]
    )


def _long_strings() -> st.SearchStrategy[str]:
    unit = st.one_of(
        st.sampled_from(["a", "0", "é", "/", "patients/", "p-0001/", "\U0001f600", "%00"]),
        st.text(min_size=1, max_size=3),
    )
    return st.builds(lambda u, n: u * n, unit, st.integers(200, 40_000))


def _resource_names(corpus: Corpus) -> st.SearchStrategy[str]:
    ident = st.one_of(
        st.sampled_from(DEMO_IDS),
        st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True),
        st.text(max_size=12),
    )
    top = st.builds(lambda c, i: f"{c}/{i}", st.sampled_from(COLLECTIONS), ident)
    nested = st.builds(
        lambda parent, sub, i: f"{parent}/{sub}/{i}",
        top,
        st.sampled_from(SUB_COLLECTIONS),
        ident,
    )
    plan = st.builds(lambda p: f"patients/{p}/carePlan", ident)
    real = st.sampled_from(corpus.names) if corpus.names else st.nothing()
    # a real name with something appended, cut short, or a segment changed
    mangled = (
        st.builds(
            lambda n, tail: n + tail,
            st.sampled_from(corpus.names),
            st.sampled_from(["/", "x", "/revisions/1", "/../x", " ", "\x00", "/versions/999"]),
        )
        if corpus.names
        else st.nothing()
    )
    if not corpus.names:
        return st.one_of(top, nested, plan)
    return weighted((6, real), (2, top), (2, nested), (1, plan), (1, mangled))


def _forged_tokens(corpus: Corpus) -> st.SearchStrategy[str]:
    """Real page tokens, cut or changed; and, where a real token is base64 JSON, the same
    token with its position replaced by any JSON value (so the fingerprint still matches)."""
    json_values = st.recursive(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False),
            st.text(max_size=20),
        ),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=6,
    )

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    decoded: list[dict[str, Any]] = []
    for token in corpus.page_tokens:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except ValueError:
            continue
        if isinstance(data, dict):
            decoded.append(data)

    options: list[st.SearchStrategy[str]] = [
        st.builds(
            lambda v: b64(json.dumps(v).encode()),
            st.dictionaries(st.sampled_from(["p", "f", "after"]), json_values, max_size=3),
        ),
        st.builds(b64, st.binary(max_size=40)),
    ]
    if corpus.page_tokens:
        real = st.sampled_from(corpus.page_tokens)
        options += [
            real,
            st.builds(lambda t, n: t[:n], real, st.integers(0, 40)),
            st.builds(lambda t, tail: t + tail, real, st.sampled_from(["A", "==", "x", "."])),
        ]
    if decoded:

        def repositioned(data: dict[str, Any], position: Any) -> str:
            return b64(json.dumps({**data, "p": position}).encode())

        def reshaped(data: dict[str, Any], key: str, value: Any) -> str:
            position = data.get("p")
            inner = dict(position) if isinstance(position, dict) else {}
            for k in list(inner) or ["after"]:
                inner[k] = value if k == key or key not in inner else inner[k]
            return b64(json.dumps({**data, "p": inner}).encode())

        real_data = st.sampled_from(decoded)
        options += [
            st.builds(repositioned, real_data, json_values),
            st.builds(reshaped, real_data, st.sampled_from(["after", "id", "key"]), json_values),
        ]
    return st.one_of(*options)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight says; shrinks towards the first."""
    ladder: list[st.SearchStrategy[Any]] = []
    for weight, strategy in choices:
        ladder += [strategy] * weight
    return st.integers(0, len(ladder) - 1).flatmap(lambda i: ladder[i])


def strings(corpus: Corpus, field_name: str = "") -> st.SearchStrategy[str]:
    """Any string, biased towards what the field means when its name says so."""
    words = st.sampled_from(WORDS)
    base = weighted(
        (30, _resource_names(corpus)),
        (15, words),
        (10, st.sampled_from(ODD_STRINGS)),
        (12, st.text(max_size=30)),
        (6, st.from_regex(r"[0-9]{1,12}", fullmatch=True)),
        (3, _long_strings()),
    )
    if field_name.endswith("page_token"):
        return weighted((3, _forged_tokens(corpus)), (1, base))
    if field_name == "request_id":
        # a few ids used again and again, so that replays and reuse are reached
        return weighted((1, st.sampled_from(["fuzz-1", "fuzz-2", "fuzz-3"])), (1, base))
    if field_name == "bsn":
        return weighted((2, st.from_regex(r"[0-9]{8,10}", fullmatch=True)), (1, words), (1, base))
    return base


# ---------------------------------------------------------------- well-known types


NOW = 1_767_225_600  # 2026-01-01


def timestamps() -> st.SearchStrategy[tuple[int, int]]:
    """(seconds, nanos) of a Timestamp, valid or not."""
    now = NOW
    seconds = st.one_of(
        st.integers(now - 3 * 365 * 86400, now + 3 * 365 * 86400),
        st.integers(TIMESTAMP_MIN_SECONDS, TIMESTAMP_MAX_SECONDS),
        st.sampled_from(
            [
                0,
                -1,
                TIMESTAMP_MIN_SECONDS,
                TIMESTAMP_MAX_SECONDS,
                TIMESTAMP_MIN_SECONDS - 1,
                TIMESTAMP_MAX_SECONDS + 1,
                2**63 - 1,
                -(2**63),
            ]
        ),
        st.integers(-(2**63), 2**63 - 1),
    )
    nanos = st.one_of(
        st.just(0),
        st.integers(0, 999_999_999),
        st.sampled_from([-1, 1_000_000_000, 2**31 - 1, -(2**31), 999_999_999]),
    )
    return st.tuples(seconds, nanos)


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
            return _ints(bits, signed=signed)
        if t == FieldDescriptor.TYPE_STRING:
            return strings(self.corpus, f.name)
        if t == FieldDescriptor.TYPE_BYTES:
            return st.one_of(st.binary(max_size=64), st.binary(min_size=1000, max_size=20_000))
        if t == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if t == FieldDescriptor.TYPE_DOUBLE:
            return _doubles(64)
        if t == FieldDescriptor.TYPE_FLOAT:
            return _doubles(32)
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
                st.just(_noop),
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

        @st.composite
        def changed(draw: st.DrawFn) -> Message:
            msg = cls.FromString(draw(st.sampled_from(real)))
            for f in descriptor.fields:
                if draw(st.integers(0, 7)) == 7:
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
        return st.integers(0, 7).flatmap(
            lambda present: value.map(lambda v: _set_single(f, v)) if present else st.just(_noop)
        )


def _noop(_msg: Message) -> None:
    return None


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


# ---------------------------------------------------------------- wire format


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
