"""Dutch identifiers used across services (reference §7).

The BSN check lives only in the identity service: no other service handles a BSN.
"""

from __future__ import annotations

import re

_AGB = re.compile(r"^\d{8}$")
_URA = re.compile(r"^\d{1,8}$")
_UZOVI = re.compile(r"^\d{4}$")
_CBS = re.compile(r"^GM\d{4}$")


def is_agb(value: str) -> bool:
    """AGB code: 8 digits (Vektis); there is no published check digit."""
    return bool(_AGB.fullmatch(value))


def is_ura(value: str) -> bool:
    """URA: at most 8 digits."""
    return bool(_URA.fullmatch(value))


def is_uzovi(value: str) -> bool:
    """UZOVI: 4 digits."""
    return bool(_UZOVI.fullmatch(value))


def is_cbs_municipality(value: str) -> bool:
    """CBS municipality code: ``GM`` and 4 digits, e.g. GM0772 (Eindhoven)."""
    return bool(_CBS.fullmatch(value))
