"""The authorization table: who may do what to whose data, one row per question.

The rows are data, in ``authorization_table.psv`` next to this file (``|``-separated, one row
a line, ``#`` comments). Columns:

- ``rpc``: ``service.Method``;
- ``caller``: a persona of personas.py (role, organisation and its type, care group);
- ``relationship``: the care relationship of the caller's organisation with the patient:
  ``none``, ``active``, ``ended``, or ``-`` where the caller has none by nature (patients,
  insurers, the care group's own people, services);
- ``consent``: the patient's consent for the row's data category from the record holder
  (a GP practice) to the caller's organisation type: ``none``, ``given``, ``withdrawn``,
  ``other`` (given, but for another data category only), or ``-`` where the RPC does not
  look at consent;
- ``tenant``: ``same`` or ``other`` care group than the caller's;
- ``patient``: ``self`` (the caller's own record), ``other`` (another, existing patient) or
  ``nonexistent``;
- ``case``: what else the row varies (see calls.py), ``-`` for the plain call;
- ``expected``: ``OK``, ``<CODE> <REASON>`` (gRPC code and ErrorInfo reason), ``PERMIT
  <REASON>`` / ``DENY <REASON>`` (an Authorize decision), ``REJECTED <REASON>`` (an item
  refused inside an OK answer);
- ``sees``: for the RPCs that answer with less than everything, how much the caller saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TABLE_FILE = Path(__file__).with_name("authorization_table.psv")
COLUMNS = (
    "rpc",
    "caller",
    "relationship",
    "consent",
    "tenant",
    "patient",
    "case",
    "expected",
    "sees",
)
RELATIONSHIPS = frozenset({"none", "active", "ended", "-"})
CONSENTS = frozenset({"none", "given", "withdrawn", "other", "-"})
TENANTS = frozenset({"same", "other"})
PATIENTS = frozenset({"self", "other", "nonexistent"})
EXPECTED = re.compile(r"^(OK|(PERMIT|DENY|REJECTED|[A-Z_]+) [A-Z][A-Z_]*)$")

# The data category each RPC's access is about.
CATEGORIES = {
    "identity.GetPatient": "patient-record",
    "identity.LookupPatient": "patient-record",
    "identity.RegisterPatient": "patient-record",
    "identity.CreateCareRelationship": "patient-record",
    "identity.ListCareRelationships": "patient-record",
    "identity.EndCareRelationship": "patient-record",
    "identity.CreateConsent": "consent",
    "identity.GetConsent": "consent",
    "identity.ListConsents": "consent",
    "identity.WithdrawConsent": "consent",
    "identity.ListConsentEvents": "consent",
    "identity.Authorize": "care-plan",
    "identity.BatchAuthorize": "care-plan",
    "identity.ListAccessLogEntries": "access-log",
}
SERVICE_CATEGORIES = {"referral": "referral", "careplan": "care-plan", "outcomes": "measurements"}
CASE_CATEGORIES = {
    "measurements-no-holder": "measurements",
    "end-user-context": "referral",
    "for-provider+context": "referral",
    "for-provider": "referral",
}

ON_BEHALF_CASES = frozenset({"on-behalf:other-person", "on-behalf:from-person"})
REFERRAL_CASES = frozenset({"to-caller", "to-other"})
CASES: dict[str, frozenset[str]] = {
    "identity.Authorize": frozenset(
        {
            "emergency",
            "vague-emergency",
            "measurements-no-holder",
            "end-user-context",
            "end-user-subject",
            "for-provider+context",
            "for-provider",
        }
    ),
    "identity.RegisterPatient": frozenset({"chosen-id"}),
    "identity.CreateCareRelationship": frozenset({"for-own", "for-hospital", "for-provider"}),
    "identity.EndCareRelationship": frozenset({"of-own", "of-hospital", "missing"}),
    "referral.GetReferral": REFERRAL_CASES,
    "referral.TransitionReferral": REFERRAL_CASES,
    "referral.RecordReferralOutcome": REFERRAL_CASES,
    "outcomes.ListMeasurements": frozenset({"two-holders"}),
}
# what ``sees`` means, per RPC that has it
SEES = {
    "identity.GetPatient": frozenset({"full", "name-only"}),
    "identity.ListCareRelationships": frozenset(
        {"all", "own", "own+coordinating", "coordinating", "none"}
    ),
    "referral.ListReferrals": frozenset({"gli+walk", "gli", "walk", "none"}),
    "referral.WatchReferralEvents": frozenset({"gli+walk", "gli", "walk", "none"}),
    "outcomes.ListMeasurements": frozenset({"practice", "hospital", "practice+hospital", "none"}),
}


@dataclass(frozen=True)
class Row:
    rpc: str
    caller: str
    relationship: str
    consent: str
    tenant: str
    patient: str
    case: str
    expected: str
    sees: str = ""
    line: int = 0

    @property
    def service(self) -> str:
        return self.rpc.split(".", 1)[0]

    @property
    def method(self) -> str:
        return self.rpc.split(".", 1)[1]

    @property
    def category(self) -> str:
        if self.case in CASE_CATEGORIES:
            return CASE_CATEGORIES[self.case]
        return CATEGORIES.get(self.rpc) or SERVICE_CATEGORIES[self.service]

    @property
    def id(self) -> str:
        parts = [self.caller, self.relationship, self.consent, self.tenant, self.patient]
        if self.case != "-":
            parts.append(self.case)
        return f"{self.rpc}[{','.join(parts)}]"


class TableError(ValueError):
    pass


def parse(text: str) -> list[Row]:
    rows: list[Row] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cells = [c.strip() for c in line.split("|")]
        if cells[0] == "rpc":
            continue  # the header
        if len(cells) == len(COLUMNS) - 1:
            cells.append("")
        if len(cells) != len(COLUMNS):
            raise TableError(f"line {number}: {len(cells)} cells, want {len(COLUMNS)}")
        rpc, caller, relationship, consent, tenant, patient, case, expected, sees = cells
        rows.append(
            Row(rpc, caller, relationship, consent, tenant, patient, case, expected, sees, number)
        )
    return rows


def problems(rows: list[Row], personas: set[str], rpcs: set[str]) -> list[str]:
    """Everything wrong with the rows' values (empty: the table is well formed)."""
    found: list[str] = []
    seen: dict[str, int] = {}
    for row in rows:
        where = f"line {row.line} ({row.id})"
        if row.rpc not in rpcs:
            found.append(f"{where}: no RPC {row.rpc}")
        if row.caller not in personas:
            found.append(f"{where}: no caller {row.caller}")
        for value, allowed, column in (
            (row.relationship, RELATIONSHIPS, "relationship"),
            (row.consent, CONSENTS, "consent"),
            (row.tenant, TENANTS, "tenant"),
            (row.patient, PATIENTS, "patient"),
        ):
            if value not in allowed:
                found.append(f"{where}: {column} {value!r} not in {sorted(allowed)}")
        cases = CASES.get(row.rpc, frozenset()) | ON_BEHALF_CASES | {"-"}
        if row.case not in cases:
            found.append(f"{where}: case {row.case!r} not in {sorted(cases)}")
        if not EXPECTED.match(row.expected):
            found.append(f"{where}: expected {row.expected!r} is not an outcome")
        if row.sees and row.sees not in SEES.get(row.rpc, frozenset()):
            found.append(f"{where}: sees {row.sees!r} not in {sorted(SEES.get(row.rpc, ()))}")
        if row.rpc in SEES and row.expected == "OK" and not row.sees:
            found.append(f"{where}: an OK row of {row.rpc} says what the caller sees")
        if row.id in seen:
            found.append(f"{where}: the same question as line {seen[row.id]}")
        seen[row.id] = row.line
    return found


def load() -> list[Row]:
    return parse(TABLE_FILE.read_text(encoding="utf-8"))
