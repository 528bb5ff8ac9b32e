"""How values read in the pages: dates in Europe/Amsterdam through Babel, money in euro,
enum values as words, and an offer's eligibility rule in plain Dutch."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale, dates, numbers
from flask import Flask
from flask_babel import lazy_gettext as _l
from google.protobuf.timestamp_pb2 import Timestamp
from markupsafe import Markup, escape

from carenet.careplan.v1 import careplan_pb2 as cp
from carenet.identity.v1 import identity_pb2 as idp
from carenet.referral.v1 import referral_pb2 as rf
from web.i18n import language, locale_key

OFFER_CATEGORIES = {
    rf.OFFER_CATEGORY_GLI: _l("Gecombineerde leefstijlinterventie (GLI)"),
    rf.OFFER_CATEGORY_PHYSICAL_ACTIVITY: _l("Bewegen"),
    rf.OFFER_CATEGORY_NUTRITION: _l("Voeding"),
    rf.OFFER_CATEGORY_SMOKING_CESSATION: _l("Stoppen met roken"),
    rf.OFFER_CATEGORY_STRESS_AND_SLEEP: _l("Stress en slaap"),
    rf.OFFER_CATEGORY_SOCIAL_AND_WELFARE: _l("Welzijn en meedoen"),
    rf.OFFER_CATEGORY_PATIENT_EDUCATION: _l("Voorlichting"),
    rf.OFFER_CATEGORY_PEER_SUPPORT: _l("Lotgenoten"),
}
FUNDINGS = {
    rf.FUNDING_BASIC_INSURANCE: _l("Basisverzekering"),
    rf.FUNDING_MUNICIPALITY: _l("Gemeente"),
    rf.FUNDING_OWN_PAYMENT: _l("Eigen betaling"),
    rf.FUNDING_SUPPLEMENTARY_INSURANCE: _l("Aanvullende verzekering"),
}
OFFER_STATES = {
    rf.OFFER_STATE_DRAFT: (_l("Concept"), "neutral"),
    rf.OFFER_STATE_PROPOSED: (_l("Voorgesteld"), "warning"),
    rf.OFFER_STATE_LISTED: (_l("Op de menukaart"), "success"),
    rf.OFFER_STATE_RETIRED: (_l("Van de menukaart"), "inactive"),
}
RECOGNITION = {
    rf.RECOGNITION_LEVEL_WELL_DESCRIBED: _l("Goed beschreven"),
    rf.RECOGNITION_LEVEL_WELL_FOUNDED: _l("Goed onderbouwd"),
    rf.RECOGNITION_LEVEL_EFFECTIVE_FIRST_EVIDENCE: _l("Effectief (eerste aanwijzingen)"),
    rf.RECOGNITION_LEVEL_EFFECTIVE_GOOD_EVIDENCE: _l("Effectief (goede aanwijzingen)"),
    rf.RECOGNITION_LEVEL_EFFECTIVE_STRONG_EVIDENCE: _l("Effectief (sterke aanwijzingen)"),
}
CAPACITY = {
    rf.CAPACITY_STATUS_NO_CAPACITY: (_l("Vol"), "danger"),
    rf.CAPACITY_STATUS_CAPACITY: (_l("Plaats vrij"), "success"),
    rf.CAPACITY_STATUS_WAITLIST: (_l("Wachtlijst"), "warning"),
    rf.CAPACITY_STATUS_ADDITIONAL_ASSESSMENT_REQUIRED: (_l("Eerst intake"), "neutral"),
}
REFERRAL_STATUS = {
    rf.REFERRAL_STATUS_DRAFT: (_l("Concept"), "neutral"),
    rf.REFERRAL_STATUS_REQUESTED: (_l("Verstuurd"), "active"),
    rf.REFERRAL_STATUS_ACCEPTED: (_l("Geaccepteerd"), "success"),
    rf.REFERRAL_STATUS_REJECTED: (_l("Afgewezen"), "danger"),
    rf.REFERRAL_STATUS_CANCELLED: (_l("Ingetrokken"), "inactive"),
    rf.REFERRAL_STATUS_IN_PROGRESS: (_l("Gestart"), "active"),
    rf.REFERRAL_STATUS_ON_HOLD: (_l("Gepauzeerd"), "warning"),
    rf.REFERRAL_STATUS_FAILED: (_l("Niet gelukt"), "danger"),
    rf.REFERRAL_STATUS_COMPLETED: (_l("Afgerond"), "success"),
    rf.REFERRAL_STATUS_ENTERED_IN_ERROR: (_l("Foutief ingevoerd"), "inactive"),
}
ATTENDANCE = {
    rf.ATTENDANCE_NONE: _l("Niet gekomen"),
    rf.ATTENDANCE_PARTIAL: _l("Deels gekomen"),
    rf.ATTENDANCE_FULL: _l("Alles gevolgd"),
}
ACTIVITY_STATUS = {
    cp.ACTIVITY_STATUS_NOT_STARTED: (_l("Nog niet begonnen"), "neutral"),
    cp.ACTIVITY_STATUS_SCHEDULED: (_l("Gepland"), "neutral"),
    cp.ACTIVITY_STATUS_IN_PROGRESS: (_l("Bezig"), "active"),
    cp.ACTIVITY_STATUS_ON_HOLD: (_l("Gepauzeerd"), "warning"),
    cp.ACTIVITY_STATUS_COMPLETED: (_l("Klaar"), "success"),
    cp.ACTIVITY_STATUS_CANCELLED: (_l("Gestopt"), "inactive"),
    cp.ACTIVITY_STATUS_STOPPED: (_l("Gestopt"), "inactive"),
    cp.ACTIVITY_STATUS_ENTERED_IN_ERROR: (_l("Foutief ingevoerd"), "inactive"),
}
GOAL_STATUS = {
    cp.GOAL_LIFECYCLE_STATUS_PROPOSED: _l("Voorgesteld"),
    cp.GOAL_LIFECYCLE_STATUS_PLANNED: _l("Gepland"),
    cp.GOAL_LIFECYCLE_STATUS_ACCEPTED: _l("Afgesproken"),
    cp.GOAL_LIFECYCLE_STATUS_ACTIVE: _l("Bezig"),
    cp.GOAL_LIFECYCLE_STATUS_ON_HOLD: _l("Gepauzeerd"),
    cp.GOAL_LIFECYCLE_STATUS_COMPLETED: _l("Bereikt"),
    cp.GOAL_LIFECYCLE_STATUS_CANCELLED: _l("Gestopt"),
    cp.GOAL_LIFECYCLE_STATUS_REJECTED: _l("Niet afgesproken"),
    cp.GOAL_LIFECYCLE_STATUS_ENTERED_IN_ERROR: _l("Foutief ingevoerd"),
}
DATA_CATEGORIES = {
    idp.DATA_CATEGORY_REFERRAL: _l("Verwijzingen"),
    idp.DATA_CATEGORY_CARE_PLAN: _l("Zorgplan"),
    idp.DATA_CATEGORY_MEASUREMENTS: _l("Metingen"),
    idp.DATA_CATEGORY_PATIENT_RECORD: _l("Inschrijving"),
    idp.DATA_CATEGORY_CONSENT: _l("Toestemmingen"),
    idp.DATA_CATEGORY_ACCESS_LOG: _l("Wie keek in uw gegevens"),
}
ORGANISATION_TYPES = {
    idp.ORGANISATION_TYPE_GP_PRACTICE: _l("Huisartsenpraktijk"),
    idp.ORGANISATION_TYPE_HOSPITAL: _l("Ziekenhuis"),
    idp.ORGANISATION_TYPE_MUNICIPALITY: _l("Gemeente"),
    idp.ORGANISATION_TYPE_LIFESTYLE_PROVIDER: _l("Leefstijlcoach of beweegaanbieder"),
    idp.ORGANISATION_TYPE_INSURER: _l("Zorgverzekeraar"),
    idp.ORGANISATION_TYPE_CARE_GROUP: _l("Zorggroep"),
}
CONSENT_STATES = {
    idp.CONSENT_STATE_ACTIVE: (_l("Gegeven"), "success"),
    idp.CONSENT_STATE_NOT_YET_VALID: (_l("Nog niet geldig"), "neutral"),
    idp.CONSENT_STATE_EXPIRED: (_l("Verlopen"), "inactive"),
    idp.CONSENT_STATE_WITHDRAWN: (_l("Ingetrokken"), "inactive"),
}
DECISIONS = {
    idp.DECISION_PERMIT: _l("Toegestaan"),
    idp.DECISION_DENY: _l("Geweigerd"),
}
ACTIONS = {
    idp.ACTION_READ: _l("bekeken"),
    idp.ACTION_CREATE: _l("aangemaakt"),
    idp.ACTION_UPDATE: _l("gewijzigd"),
}
WEEKDAYS = {
    "MO": _l("maandag"),
    "TU": _l("dinsdag"),
    "WE": _l("woensdag"),
    "TH": _l("donderdag"),
    "FR": _l("vrijdag"),
    "SA": _l("zaterdag"),
    "SU": _l("zondag"),
}
PROFILE_FIELDS = {
    rf.PROFILE_FIELD_CONDITIONS: _l("aandoening"),
    rf.PROFILE_FIELD_AGE: _l("leeftijd"),
    rf.PROFILE_FIELD_BMI: _l("BMI"),
    rf.PROFILE_FIELD_RISK_FACTORS: _l("risicofactoren"),
    rf.PROFILE_FIELD_PAM_LEVEL: _l("PAM-niveau"),
    rf.PROFILE_FIELD_POSTCODE: _l("postcode"),
    rf.PROFILE_FIELD_MUNICIPALITY: _l("gemeente"),
    rf.PROFILE_FIELD_LANGUAGE: _l("taal"),
    rf.PROFILE_FIELD_REFERRER_ROLE: _l("verwijzer"),
}
OPERATORS = {
    rf.OPERATOR_EQ: "=",
    rf.OPERATOR_GE: _l("minstens"),
    rf.OPERATOR_GT: _l("meer dan"),
    rf.OPERATOR_LE: _l("hoogstens"),
    rf.OPERATOR_LT: _l("minder dan"),
    rf.OPERATOR_ANY_OF: _l("een van"),
    rf.OPERATOR_ALL_OF: _l("alle van"),
    rf.OPERATOR_NONE_OF: _l("geen van"),
}


ONE_DECIMAL = numbers.parse_pattern("#,##0.#")  # parsed once, not on every number


def decimal(value: float | Decimal, pattern: numbers.NumberPattern) -> str:
    """A number in the request's language (Flask-Babel's ``format_decimal``)."""
    return _decimal_text(value, pattern, language().locale)


# Babel's formatting of a number, a date or a time of day is slow next to the rest of a page
# (it parses and rounds through Decimal); the words for the same value in the same language
# are kept. A kept value is a number or a day alone, never what it belongs to.
FORMATS_KEPT = 4096


@functools.lru_cache(maxsize=FORMATS_KEPT, typed=True)
def _decimal_text(value: float | Decimal, pattern: numbers.NumberPattern, locale: Locale) -> str:
    return numbers.format_decimal(value, format=pattern, locale=locale)


@functools.lru_cache(maxsize=FORMATS_KEPT)
def _date_text(day: dt.date, style: str, locale: Locale) -> str:
    return dates.format_date(day, style, locale=locale)


@functools.lru_cache(maxsize=FORMATS_KEPT)
def _time_text(moment: dt.time, locale: Locale) -> str:
    return dates.format_time(moment, "short", locale=locale)


def _number(value: float) -> str:
    return decimal(value, ONE_DECIMAL)


def predicate_text(p: rf.Predicate) -> str:
    field = str(PROFILE_FIELDS.get(p.field, "?"))
    operator = str(OPERATORS.get(p.operator, "?"))
    if p.HasField("number"):
        return f"{field} {operator} {_number(p.number)}"
    return f"{field}: {operator} {', '.join(p.values)}"


def rule_lines(rule: rf.EligibilityRule, depth: int = 0) -> list[tuple[int, str]]:
    """The rule as indented lines of plain words: ("alle voorwaarden", then each one)."""
    which = rule.WhichOneof("rule")
    if which == "predicate":
        return [(depth, predicate_text(rule.predicate))]
    if which in ("all", "any"):
        head = str(
            _l("Aan al deze voorwaarden voldoen:")
            if which == "all"
            else _l("Aan minstens een van deze voorwaarden voldoen:")
        )
        lines = [(depth, head)]
        for child in getattr(rule, which).rules:
            lines += rule_lines(child, depth + 1)
        return lines
    if which == "not":
        return [(depth, str(_l("Niet:"))), *rule_lines(getattr(rule, "not"), depth + 1)]
    return []


def when(value: Timestamp | dt.datetime | None, style: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, Timestamp):
        if not value.seconds and not value.nanos:
            return ""
        value = value.ToDatetime(tzinfo=dt.UTC)
    # the date in the style asked and the time to the minute (seconds say nothing to a
    # reader), both in Europe/Amsterdam, joined as the locale joins them ("7 dec 2026 13:11")
    locale = language().locale
    local = _local(value)
    date = _date_text(local.date(), style, locale)
    time = _time_text(local.time().replace(second=0, microsecond=0), locale)
    joined = locale.datetime_formats.get(style) or "{1} {0}"
    return str(joined).replace("{1}", date).replace("{0}", time)


def _local(value: dt.datetime) -> dt.datetime:
    """The moment in the request's time zone (Flask-Babel's ``to_user_timezone``)."""
    zone = language().timezone
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    # astimezone asks the pytz zone's fromutc, which picks the offset in force at that
    # moment: already what normalize would give (normalize is for local arithmetic)
    return aware.astimezone(zone)


def _date(value: dt.datetime, style: str) -> str:
    """The date in the request's time zone (Flask-Babel's ``format_date``)."""
    return _date_text(_local(value).date(), style, language().locale)


def day(value: Timestamp | None, style: str = "long") -> str:
    if value is None or (not value.seconds and not value.nanos):
        return ""
    return _date(value.ToDatetime(tzinfo=dt.UTC), style)


def _currency(amount: float | Decimal) -> str:
    return numbers.format_currency(amount, "EUR", locale=language().locale)


def euro(cents: int) -> str:
    return _currency(cents / 100)


_RESOLVED: dict[tuple[int, str], dict[Any, tuple[str, str]]] = {}


def resolved(table: dict[Any, Any]) -> dict[Any, tuple[str, str]]:
    """A label table in the request's language, as (text, badge) pairs; translated once per
    table and language instead of on every use (a page shows the same words many times)."""
    key = (id(table), locale_key())
    found = _RESOLVED.get(key)
    if found is None:
        found = {
            value: (str(entry[0]), str(entry[1])) if isinstance(entry, tuple) else (str(entry), "")
            for value, entry in table.items()
        }
        _RESOLVED[key] = found
    return found


def money(amount: str) -> str:
    """A decimal string of euro (the outcomes API's amounts) as Dutch money."""
    try:
        return _currency(Decimal(amount))
    except (InvalidOperation, ValueError):
        return amount


def label(table: dict[Any, Any], value: Any) -> str:
    found = resolved(table).get(value)
    return found[0] if found is not None else "-"


def badge(table: dict[Any, Any], value: Any) -> str:
    found = resolved(table).get(value)
    return found[1] if found is not None and found[1] else "neutral"


def status(table: dict[Any, Any], value: Any) -> Markup:
    """A status badge: the value's words in the badge's colour (a function, not a macro: a
    macro call costs a page more than the badge itself)."""
    shown, colour = escape(label(table, value)), escape(badge(table, value))
    badge_html = f'<span class="utrecht-status-badge utrecht-status-badge--{colour}">{shown}</span>'
    return Markup(badge_html)  # noqa: S704  # both parts escaped above


def choices(table: dict[Any, Any]) -> list[tuple[Any, str]]:
    return [(value, text) for value, (text, _badge) in resolved(table).items()]


def last_part(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        when=when,
        day=day,
        euro=euro,
        money=money,
        last_part=last_part,
        number=_number,
        weekday=lambda code: WEEKDAYS.get(code, code),
        reject_page=lambda args: {k: v for k, v in args.items() if k != "page"},
    )
    app.jinja_env.globals.update(
        label=label,
        badge=badge,
        status=status,
        choices=choices,
        rule_lines=rule_lines,
        OFFER_CATEGORIES=OFFER_CATEGORIES,
        FUNDINGS=FUNDINGS,
        OFFER_STATES=OFFER_STATES,
        RECOGNITION=RECOGNITION,
        CAPACITY=CAPACITY,
        REFERRAL_STATUS=REFERRAL_STATUS,
        ATTENDANCE=ATTENDANCE,
        ACTIVITY_STATUS=ACTIVITY_STATUS,
        GOAL_STATUS=GOAL_STATUS,
        DATA_CATEGORIES=DATA_CATEGORIES,
        ORGANISATION_TYPES=ORGANISATION_TYPES,
        CONSENT_STATES=CONSENT_STATES,
        DECISIONS=DECISIONS,
        ACTIONS=ACTIONS,
        WEEKDAYS=WEEKDAYS,
    )
