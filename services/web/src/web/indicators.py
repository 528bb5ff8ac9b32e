"""The outcome indicators in words: a title in the reader's language and the unit of the
score.

outcomes names each indicator by code (``DM2_HBA1C_MEASURED``) and gives an English title and
its unit in the definition (``ListIndicatorDefinitions``). Every indicator the platform ships
(``services/outcomes/src/outcomes/indicators``) has its title here in Dutch (English in the
English pages, through Flask-Babel); an indicator added later shows its own title until it
is added here. The unit comes from the definition: a proportion in percent, or a rate (per
100 patient-years), which is never shown with a percent sign.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import grpc
from flask import g
from flask_babel import lazy_gettext as _l

from carenet.outcomes.v1 import outcomes_service_pb2 as oc_rpc

log = logging.getLogger("web.indicators")

TITLES: dict[str, Any] = {
    "COPD_CCQ_MRC": _l("CCQ en MRC vastgelegd in de afgelopen 12 maanden"),
    "COPD_EXACERBATIONS": _l("Longaanvallen per 100 patiëntjaren"),
    "COPD_FLU_VACCINATION": _l("Griepprik in de afgelopen 12 maanden"),
    "COPD_INHALER_TECHNIQUE": _l("Inhalatietechniek gecontroleerd in de afgelopen 12 maanden"),
    "COPD_LUNG_FUNCTION": _l("Longfunctie gemeten in de afgelopen 12 maanden"),
    "COPD_SMOKING_STATUS": _l("Rookstatus bekend"),
    "CVRM_ROUTINE_CHECK": _l(
        "Routinecontrole gedaan (2 van 3: roken, bewegen, systolische bloeddruk)"
    ),
    "DM2_EGFR_MEASURED": _l("eGFR gemeten in de afgelopen 12 maanden"),
    "DM2_FOOT_EXAM_12M": _l("Voetonderzoek in de afgelopen 12 maanden"),
    "DM2_FUNDUS_36M": _l("Oogonderzoek (fundus) in de afgelopen 36 maanden"),
    "DM2_HBA1C_AT_TARGET": _l("Laatste HbA1c hoogstens 53 mmol/mol (onder 70 jaar)"),
    "DM2_HBA1C_BANDS": _l("Laatste HbA1c per klasse"),
    "DM2_HBA1C_MEASURED": _l("HbA1c gemeten in de afgelopen 12 maanden"),
    "DM2_LDL_BELOW_2_6": _l("Laatste LDL onder 2,6 mmol/l"),
    "DM2_SBP_BELOW_140": _l("Laatste systolische bloeddruk onder 140 mmHg"),
    "PROM_PAM_LEVELS": _l("Verdeling over de PAM-niveaus (eigen regie)"),
}
RATE_UNIT = _l("per 100 patiëntjaren")


@dataclass(frozen=True)
class Indicator:
    code: str
    title: str
    percent: bool  # a proportion in percent; otherwise a rate per 100 patient-years


def _definitions() -> dict[str, dict[str, Any]]:
    """The definitions by code (latest version wins): one call per page, nothing kept."""
    found: dict[str, dict[str, Any]] = {}
    token = ""
    for _page in range(5):
        try:
            reply = g.api.outcomes.ListIndicatorDefinitions(
                oc_rpc.ListIndicatorDefinitionsRequest(page_size=1000, page_token=token)
            )
        except grpc.RpcError:
            log.info("indicator_definitions_unavailable")
            return found
        for d in reply.indicator_definitions:
            try:
                body = json.loads(d.definition_json or "{}")
            except ValueError:
                body = {}
            found[d.code] = {"title": d.title, "unit": body.get("unit", "percent")}
        token = reply.next_page_token
        if not token:
            break
    return found


def describe(codes: set[str]) -> dict[str, Indicator]:
    definitions = _definitions() if codes else {}
    described: dict[str, Indicator] = {}
    for code in codes:
        definition = definitions.get(code, {})
        known = TITLES.get(code)
        title = str(known) if known is not None else str(definition.get("title") or code)
        described[code] = Indicator(code, title, definition.get("unit", "percent") == "percent")
    return described
