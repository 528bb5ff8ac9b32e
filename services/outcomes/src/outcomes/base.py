"""What every outcomes use case shares: the roles it knows, the caller's
tenant and organisation, and the checks of periods, amounts and patient ids."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from outcomes import errors
from servicekit import names
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument, RoleNotPermitted, Violations

ADMIN = "care-group-admin"
INSURER = "insurer-analyst"
PRACTICE_ROLES = frozenset({"gp", "practice-nurse"})
REPORT_READERS = frozenset({ADMIN, INSURER, "auditor", "gp", "practice-nurse", "service"})
# The years a reporting, contract or cost period may lie in: its indicators look back at most
# 120 months, which must stay inside the range of a date.
FIRST_PERIOD = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LAST_PERIOD = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def org_id(name: str) -> str:
    return name.removeprefix("organisations/")


def care_group_of(principal: Principal) -> str:
    return org_id(principal.care_group)


def organisation_of(principal: Principal) -> str:
    return org_id(principal.organisation)


def refuse_insurer(principal: Principal) -> None:
    if principal.has_role(INSURER):
        raise errors.InsurerNoPatientData("insurers receive aggregates only")


def refuse_patient(principal: Principal) -> None:
    """A patient reaches no enrolment or measurement RPC, whichever client signed them in
    (the patient app's tokens carry no outcomes audience; a patient signed in through the
    KIS or web client is refused here by role): PERMISSION_DENIED ``ROLE_NOT_PERMITTED``
    before identity is asked, so nothing is read and nothing is logged."""
    if principal.has_role("patient"):
        raise RoleNotPermitted("the caller's role gives no access to this data")


# Amounts, counts and rates a caller sends: at most 10^15 (a quadrillion euro) and, when not
# zero, at least 10^-6, so that the financing and SROI formulas stay far inside the range of
# a Decimal (beyond it they raised Overflow, which was INTERNAL).
MAX_AMOUNT = Decimal("1e15")
MIN_AMOUNT = Decimal("1e-6")


def amount_in_range(value: Decimal) -> bool:
    return value.is_finite() and (value == 0 or MIN_AMOUNT <= abs(value) <= MAX_AMOUNT)


def decimal_value(text: str, field: str, v: Violations, default: str = "0") -> Decimal:
    """A decimal a caller sent (``default`` when empty): INVALID_DECIMAL naming ``field``
    when it is no decimal or out of range (see :func:`amount_in_range`)."""
    try:
        value = Decimal(text or default)
    except InvalidOperation:
        v.add(field, "a decimal number", "INVALID_DECIMAL")
        return Decimal(0)
    if not amount_in_range(value):
        v.add(field, "0, or between 1e-6 and 1e15 (either sign)", "INVALID_DECIMAL")
        return Decimal(0)
    return value


def check_period(
    start: dt.datetime | None, end: dt.datetime | None, v: Violations, prefix: str = ""
) -> None:
    """A period with its end after its start, both between 1900 and 2200."""
    for name, moment in (("period_start", start), ("period_end", end)):
        if moment is not None and not FIRST_PERIOD <= moment <= LAST_PERIOD:
            v.add(f"{prefix}{name}", "between 1900-01-01 and 2200-01-01", "INVALID_PERIOD")
    if start is None or end is None or end <= start:
        v.add(f"{prefix}period_end", "a period with its end after its start", "INVALID_PERIOD")


def valid_patient_id(value: str) -> bool:
    try:
        names.parse_one(f"patients/{value}", "patients")
    except InvalidArgument:
        return False
    return True
