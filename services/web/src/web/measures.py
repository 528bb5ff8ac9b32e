"""What a care-plan goal measures, in the reader's language.

A goal's target names its measure as text (careplan's ``GoalTarget.measure``): a code of the
outcomes code table (``HBA1C``), that table's English display (``Body weight``), or words
someone typed (the demo plan's ``minutes walked a day``). Every measure the platform knows
(the code table of outcomes, ``services/outcomes/src/outcomes/codes.json``, and the demo
plan's walking goal) is shown in Dutch, or in English in the English pages, through
Flask-Babel; any other text stays as it was written. Units are shown as people write them
(``mmHg``, not UCUM's ``mm[Hg]``); a coded observation's unit (``{status}``) is no unit.
"""

from __future__ import annotations

from typing import Any

from babel import numbers
from flask import Flask
from flask_babel import lazy_gettext as _l

from carenet.careplan.v1 import careplan_pb2 as cp
from web import formatting
from web.i18n import gettext as _

# The outcomes code table, by code and by its English display; and the plan's own measures.
_KNOWN: list[tuple[tuple[str, ...], Any]] = [
    (("HBA1C", "HbA1c (IFCC)", "HbA1c"), _l("HbA1c (gemiddelde bloedsuiker)")),
    (("SBP", "Systolic blood pressure"), _l("Bovendruk (bloeddruk)")),
    (("DBP", "Diastolic blood pressure"), _l("Onderdruk (bloeddruk)")),
    (("LDL", "LDL cholesterol"), _l("LDL-cholesterol")),
    (("NON_HDL", "Non-HDL cholesterol"), _l("Non-HDL-cholesterol")),
    (("EGFR", "eGFR (CKD-EPI)", "eGFR"), _l("Nierfunctie (eGFR)")),
    (
        ("ACR", "Albumin/creatinine ratio (urine)"),
        _l("Eiwit in de urine (albumine/kreatinine-ratio)"),
    ),
    (("WEIGHT", "Body weight", "weight"), _l("Gewicht")),
    (("BMI", "Body mass index"), _l("BMI (gewicht ten opzichte van lengte)")),
    (("SMOKING_STATUS", "Smoking status (0 never, 1 former, 2 current)"), _l("Roken")),
    (
        (
            "EXERCISE_STATUS",
            "Exercise status (0 inactive, 1 partly active, 2 meets the norm)",
        ),
        _l("Bewegen volgens de beweegrichtlijn"),
    ),
    (("FOOT_EXAM", "Foot examination (Sims risk grade 0-4)"), _l("Voetonderzoek")),
    (
        ("FUNDUS_EXAM", "Fundus examination (0 no retinopathy, 1 retinopathy)"),
        _l("Oogonderzoek (netvlies)"),
    ),
    (("SPIROMETRY", "Spirometry, FEV1 % of predicted"), _l("Longfunctie (FEV1)")),
    (
        ("INHALER_TECHNIQUE", "Inhaler technique checked (0 incorrect, 1 correct)"),
        _l("Puffer goed gebruiken"),
    ),
    (("FLU_VACCINATION", "Influenza vaccination given"), _l("Griepprik")),
    (("EXACERBATION", "COPD exacerbation (registered)"), _l("Longaanval (COPD)")),
    (
        ("PAM_LEVEL", "Patient Activation Measure level (1-4)"),
        _l("Zelf regie voeren (PAM-niveau)"),
    ),
    (
        ("CCQ", "Clinical COPD Questionnaire total score (0-6)"),
        _l("COPD-klachten (CCQ-score)"),
    ),
    (("MRC", "MRC dyspnoea scale (1-5)"), _l("Kortademigheid (MRC-schaal)")),
    (("minutes walked a day", "minutes walking a day"), _l("Minuten wandelen per dag")),
]
_UNITS: dict[str, Any] = {
    "min/d": _l("minuten per dag"),
    "min": _l("minuten"),
    "mmol/mol": "mmol/mol",
    "mmol/L": "mmol/l",
    "mm[Hg]": "mmHg",
    "mg/mmol": "mg/mmol",
    "kg": "kg",
    "kg/m2": "kg/m²",
    "mL/min/{1.73_m2}": "ml/min/1,73 m²",
    "%": "%",
}


def _key(text: str) -> str:
    # whitespace runs as one space, none at the ends (str.split's whitespace is re's \s)
    return " ".join(text.split()).casefold()


MEASURES: dict[str, Any] = {_key(name): text for names, text in _KNOWN for name in names}


def measure(text: str) -> str:
    """The measure in the page's language when the platform knows it, else as written."""
    found = formatting.resolved(MEASURES).get(_key(text))  # translated once per language
    return found[0] if found is not None else text


def unit(text: str) -> str:
    if text.startswith("{") and text.endswith("}"):
        return ""  # a coded observation: the value is a code, not an amount
    found = formatting.resolved(_UNITS).get(text)
    return found[0] if found is not None else text


TWO_DECIMALS = numbers.parse_pattern("#,##0.##")


def target(t: cp.GoalTarget) -> str:
    """A goal's target in words: "Minuten wandelen per dag: minstens 30 minuten per dag"."""
    shown = unit(t.unit)

    def amount(value: float) -> str:
        number = formatting.decimal(value, TWO_DECIMALS)
        return f"{number} {shown}".strip()

    has_low, has_high = t.HasField("low"), t.HasField("high")
    if has_low and has_high and t.low == t.high:
        value = amount(t.low)
    elif has_low and has_high:
        value = _("tussen %(low)s en %(high)s", low=amount(t.low), high=amount(t.high))
    elif has_low:
        value = _("minstens %(low)s", low=amount(t.low))
    elif has_high:
        value = _("niet meer dan %(high)s", high=amount(t.high))
    else:
        value = ""
    name = measure(t.measure)
    text = f"{name}: {value}" if name and value else (name or value)
    due = formatting.day(t.due_time) if t.HasField("due_time") else ""
    if due:
        text = _("%(target)s, uiterlijk %(date)s", target=text, date=due) if text else due
    return text


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(goal_target=target, measure=measure)
