"""The pages' language. The English catalogue (translations/en/LC_MESSAGES/messages.po;
Dutch is the source language) is compiled at start into a folder of the process's own, so
the package stays read-only and no compiled file is kept in the repository. Per request,
the locale, catalogue and time zone are asked of Flask-Babel once (:func:`language`)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, has_request_context
from flask.templating import Environment as FlaskEnvironment
from flask_babel import get_locale, get_timezone, get_translations
from jinja2 import Template
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from jinja2.nodes import EvalContext
from jinja2.utils import pass_eval_context
from markupsafe import Markup

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


@dataclass(frozen=True)
class Language:
    """The request's language: Babel's locale, the catalogue and the time zone, asked of
    Flask-Babel once per request instead of for every string, date and number a page shows
    (each of Flask-Babel's own calls looks them up again through the request context)."""

    locale: Locale
    translations: Any  # babel.support.Translations, or NullTranslations for the source
    timezone: Any  # a pytz time zone (Flask-Babel's BABEL_DEFAULT_TIMEZONE)
    key: str


# The request's Language, kept in a context variable of its own rather than in ``g``: a page
# asks for it dozens of times, and each look-up through ``g`` costs a trip through Flask's
# context proxy. Cleared when the request's (and the application's) context ends
# (:func:`install_request_gettext`), so a request never sees another request's language.
_CURRENT: ContextVar[Language | None] = ContextVar("carenet_language", default=None)


def language() -> Language:
    """The request's :class:`Language`, made on first use and kept for the request."""
    found = _CURRENT.get()
    if found is None:
        locale = get_locale() or Locale.parse("nl")
        found = Language(locale, get_translations(), get_timezone(), str(locale))
        _CURRENT.set(found)
    return found


def _forget_language(_error: BaseException | None = None) -> None:
    _CURRENT.set(None)


def gettext(string: str, **variables: Any) -> str:
    """Flask-Babel's ``gettext`` with the request's catalogue looked up once per request,
    for the strings code formats on every page."""
    text = str(language().translations.ugettext(string))
    return text % variables if variables else text


def locale_key() -> str:
    """The request's language as a string."""
    return language().key


def markup_gettext(string: str, **variables: Any) -> Markup:
    """What a template's ``_(string, **variables)`` shows where it autoescapes (see
    :func:`template_gettext`): the translation marked safe, the variables escaped into it.
    For the texts a view works out for its template."""
    translated = Markup(language().translations.ugettext(string))  # noqa: S704  # our catalogue
    if not variables and "%" not in translated:
        return translated
    return translated % variables


@pass_eval_context
def template_gettext(eval_ctx: EvalContext, string: str, **variables: Any) -> str:
    """The templates' ``_`` and ``gettext``: what Jinja's "newstyle" gettext does (the
    translation is always a format string, escaped where the template autoescapes), in one
    call instead of three. It takes the evaluation context, not the template context: a
    function given the template context costs Jinja a copy of that context on every call
    made where a template has set a variable. (An imported macro module, and so its
    evaluation context, outlives the request: the catalogue is the request's, not kept
    there.)"""
    translated: str = language().translations.ugettext(string)
    if eval_ctx.autoescape:
        translated = Markup(translated)  # noqa: S704  # our own catalogue, as Jinja's i18n does
    if not variables and "%" not in translated:
        return translated  # what formatting with no variables would give
    return translated % variables


def install_request_gettext(app: Flask) -> None:
    """The templates' ``_``, ``gettext`` and ``ngettext`` with the request's catalogue looked
    up once per request (Flask-Babel's own callables look up the request context, the locale
    and the catalogue cache for each string; a page has dozens)."""

    def _gettext(string: str) -> str:
        return str(language().translations.ugettext(string))

    def _ngettext(singular: str, plural: str, n: int) -> str:
        return str(language().translations.ungettext(singular, plural, n))

    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, newstyle=True
    )
    app.jinja_env.globals.update(_=template_gettext, gettext=template_gettext)
    app.teardown_request(_forget_language)
    app.teardown_appcontext(_forget_language)


GETTEXT_NAMES = frozenset({"_", "gettext"})
TEMPLATES_KEPT = 400  # compiled templates kept per language (Jinja's default cache size)


class ConstantGettext(Extension):
    """Translates each ``_("...")`` or ``gettext("...")`` of a template that has no other
    argument when the template is compiled for one language (:class:`LanguageEnvironment`),
    instead of on every rendering: what the call would return, the translation formatted
    with no variables and marked safe. A call with variables is left to
    :func:`template_gettext`."""

    def filter_stream(self, stream: TokenStream) -> TokenStream | Iterator[Token]:
        catalogue = getattr(self.environment, "carenet_catalogue", None)
        if catalogue is None:
            return stream
        return self._translated(list(stream), catalogue)

    @staticmethod
    def _translated(tokens: list[Token], catalogue: Any) -> Iterator[Token]:
        i = 0
        while i < len(tokens):
            token = tokens[i]
            window = tokens[i : i + 4]
            if (
                token.type == "name"
                and token.value in GETTEXT_NAMES
                and (i == 0 or tokens[i - 1].type != "dot")
                and [t.type for t in window] == ["name", "lparen", "string", "rparen"]
            ):
                try:
                    text = str(catalogue.ugettext(window[2].value)) % {}
                except (KeyError, TypeError, ValueError):  # a format the call would fail on
                    yield token
                    i += 1
                    continue
                line = token.lineno
                yield Token(line, "lparen", "(")
                yield Token(line, "string", text)
                yield Token(line, "pipe", "|")
                yield Token(line, "name", "safe")
                yield Token(line, "rparen", ")")
                i += 4
                continue
            yield token
            i += 1


class LanguageEnvironment(FlaskEnvironment):
    """The application's Jinja environment; in a request, templates are compiled and kept
    per language (an overlay of this environment with its own cache and
    :class:`ConstantGettext`), so that a page's fixed words cost nothing when it is shown.
    Outside a request, templates are compiled as usual and translated when rendered."""

    carenet_catalogue: Any = None

    def _for_request(self) -> Any:
        if self.carenet_catalogue is not None or not has_request_context():
            return None
        overlays: dict[str, Any] = self.__dict__.setdefault("carenet_overlays", {})
        lang = language()
        found = overlays.get(lang.key)
        if found is None:
            found = self.overlay(extensions=[ConstantGettext], cache_size=TEMPLATES_KEPT)
            found.carenet_catalogue = lang.translations
            overlays[lang.key] = found
        return found

    def get_template(self, name: Any, parent: Any = None, globals: Any = None) -> Template:
        overlay = self._for_request()
        if overlay is None:
            return super().get_template(name, parent, globals)
        return overlay.get_template(name, parent, globals)  # type: ignore[no-any-return]

    def select_template(self, names: Any, parent: Any = None, globals: Any = None) -> Template:
        overlay = self._for_request()
        if overlay is None:
            return super().select_template(names, parent, globals)
        return overlay.select_template(names, parent, globals)  # type: ignore[no-any-return]
