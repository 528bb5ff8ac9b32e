"""The English catalogue (translations/en/LC_MESSAGES/messages.po; Dutch is the source
language): compiled at start into a folder of the process's own, so the package stays
read-only and no compiled file is kept in the repository."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g
from flask_babel import get_locale, get_translations

SOURCE = Path(__file__).resolve().parent / "translations"


def compiled_translations() -> str:
    """A folder with every catalogue of SOURCE compiled (<lang>/LC_MESSAGES/messages.mo)."""
    target = Path(tempfile.mkdtemp(prefix="carenet-web-translations-"))
    for po in SOURCE.glob("*/LC_MESSAGES/messages.po"):
        mo = target / po.relative_to(SOURCE).with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as source:
            catalog = read_po(source)
        with mo.open("wb") as out:
            write_mo(out, catalog)
    return str(target)


def _translations() -> Any:
    found = g.get("carenet_translations")
    if found is None:
        found = get_translations()
        g.carenet_translations = found
    return found


def gettext(string: str, **variables: Any) -> str:
    """Flask-Babel's ``gettext`` with the request's catalogue looked up once per request (see
    :func:`install_request_gettext`), for the strings code formats on every page."""
    text = str(_translations().ugettext(string))
    return text % variables if variables else text


def locale_key() -> str:
    """The request's language as a string, asked of Flask-Babel once per request."""
    found = g.get("carenet_locale")
    if found is None:
        found = str(get_locale())
        g.carenet_locale = found
    return str(found)


def install_request_gettext(app: Flask) -> None:
    """The templates' ``_`` and ``ngettext`` with the request's catalogue looked up once per
    request instead of on every string (Flask-Babel's own callables look up the request
    context, the locale and the catalogue cache for each one; a page has dozens)."""
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
    )
