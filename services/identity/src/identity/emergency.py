"""What counts as an emergency reason (break the glass).

Code cannot tell whether a reason is true. The rule is therefore only a floor that makes a
clinician state, in a checkable form, which emergency situation they claim, and the real
control is afterwards: every emergency access is a flagged entry of the access log
(``emergency``), listed for the care group's auditor and privacy officer with
``ListAccessLogEntries(emergency_only=true)``, who reviews each one with the clinician.

A reason is ``<situation>: <explanation>``:

- ``<situation>`` is one of :data:`SITUATIONS`;
- ``<explanation>`` has at least :data:`MIN_CHARACTERS` non-blank characters and
  :data:`MIN_WORDS` distinct words of two or more letters, and is not obvious filler: no
  lorem ipsum, no letter repeated three times in a row ("aaa"), no run along a keyboard
  row ("asdf", "qwer", "zxcv"), no stock non-answers ("no reason", "test", "n/a").
"""

from __future__ import annotations

import re

SITUATIONS: dict[str, str] = {
    "unconscious-patient": "the patient is unconscious or otherwise cannot be asked",
    "life-threatening": "a life-threatening situation needs the data now",
    "acute-care-no-consent-reachable": (
        "acute care is needed and neither the patient nor a representative can be reached"
    ),
}

MIN_CHARACTERS = 20
MIN_WORDS = 3

_WORD = re.compile(r"[^\W\d_]{2,}")
_REPEATED = re.compile(r"([^\W\d_])\1\1", re.IGNORECASE)
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "azertyuiop", "qsdfghjklm", "wxcvbn")
_STOCK = (
    "lorem",
    "ipsum",
    "no reason",
    "not needed",
    "just because",
    "just checking",
    "n/a",
    "test",
    "whatever",
)


def _keyboard_run(word: str) -> bool:
    w = word.casefold()
    return len(w) >= 4 and any(w in row for row in _KEYBOARD_ROWS)


def is_filler(text: str) -> bool:
    """Obvious filler: what a clinician types to get past a box, not a situation."""
    lowered = text.casefold()
    if any(stock in lowered for stock in _STOCK):
        return True
    if _REPEATED.search(text):
        return True
    return any(_keyboard_run(word) for word in _WORD.findall(text))


def split(reason: str) -> tuple[str, str]:
    """(situation, explanation); situation is '' when the reason names none of ours."""
    code, sep, text = reason.partition(":")
    code = code.strip().casefold()
    if not sep or code not in SITUATIONS:
        return "", reason
    return code, text


def is_real_reason(reason: str) -> bool:
    situation, text = split(reason)
    if not situation:
        return False
    characters = sum(1 for c in text if not c.isspace())
    words = {w.casefold() for w in _WORD.findall(text)}
    return characters >= MIN_CHARACTERS and len(words) >= MIN_WORDS and not is_filler(text)
