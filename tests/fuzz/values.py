"""Values for generated requests: the corpus read from the running platform, and
strategies for strings, numbers and Timestamps, plausible and wild.

Wild values: strings that are real resource names, names that only look valid, garbage,
control characters and very long ones; integers at and beyond their edges; NaN and
infinities; Timestamps outside the range ``google.protobuf`` allows; page tokens cut,
extended or re-encoded with a position of another type.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

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
    # ids that a service may read as a number (a version, a revision, a position)
    "2147483647",
    "2147483648",
    "9223372036854775808",
    "99999999999999999999",
    "1e3",
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
    "Infinity",
    "-Infinity",
    "1e309",
    "1e999999",
    "-1e999999",
    "1e-999999",
    "0.0000001",
    "123456789012345678901234567890.5",
    "1,5",
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


def ints(bits: int, *, signed: bool) -> st.SearchStrategy[int]:
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


def doubles(width: int) -> st.SearchStrategy[float]:
    edges = [0.0, -0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf]
    if width == 64:
        edges += [1e308, -1e308, 5e-324, 9.007199254740993e15]
    return st.one_of(
        st.floats(-1000, 1000, width=width),  # type: ignore[arg-type]
        st.sampled_from(edges),
        st.floats(width=width),  # type: ignore[arg-type]
    )


def _long_strings() -> st.SearchStrategy[str]:
    """Strings longer than a field may be: just past the usual column sizes (32, 63, 64,
    100, 128, 200, 300) as often as far beyond them (up to about 100,000 characters)."""
    unit = st.one_of(
        st.sampled_from(["a", "0", "é", "/", "patients/", "p-0001/", "\U0001f600", "%00"]),
        st.text(min_size=1, max_size=3),
    )
    repeats = st.one_of(st.integers(33, 330), st.integers(331, 40_000))
    return st.builds(lambda u, n: u * n, unit, repeats)


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
