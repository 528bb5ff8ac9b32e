"""The pages' language: fixed words translated when a template is compiled for a language
say exactly what translating them on every rendering says, each language keeps its own
compiled templates, and the kept formatting of numbers, dates and times gives what
Flask-Babel's own functions give."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from flask import Flask, render_template, render_template_string
from flask.testing import FlaskClient
from flask_babel import Babel, force_locale
from flask_babel import format_date as babel_date
from flask_babel import format_decimal as babel_decimal
from flask_babel import format_time as babel_time
from google.protobuf.timestamp_pb2 import Timestamp
from jinja2 import DictLoader

from web import formatting, i18n, measures

# Message ids of the English catalogue, with words the template itself adds around them.
SOURCE = """{% macro labelled(text) %}<label>{{ text }}</label>{% endmacro -%}
{% set menu = _('Hoofdmenu') %}
<p>{{ _("Inloggen") }}|{{ _('Afmelden') }}|{{ gettext("Naar de inhoud") }}</p>
<p>{{ menu }}|{{ labelled(_("Toegankelijkheid")) }}</p>
<p>{{ _("Doel van %(org)s", org="<b>De Linde & co</b>") }}</p>
<p>{{ _("100%% zeker, niet vertaald") }}|{{ _("Nog niet vertaald & <b>ook niet</b>") }}</p>
<p>{{ _("Inloggen") if flag else _("Afmelden") }}</p>
"""


@pytest.fixture
def small_app() -> Flask:
    """An application with the web front's language set-up and one template of its own."""
    app = Flask("i18n_test")
    app.jinja_environment = i18n.LanguageEnvironment
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = i18n.compiled_translations()
    Babel(app)
    i18n.install_request_gettext(app)
    app.jinja_loader = DictLoader({"page.html": SOURCE})
    return app


@pytest.mark.parametrize("language", ["nl", "en"])
def test_words_translated_when_compiled_are_the_words_translated_when_shown(
    small_app: Flask, language: str
) -> None:
    with small_app.test_request_context("/"), force_locale(language):
        compiled = render_template("page.html", flag=True)  # per language, at compile time
        shown = render_template_string(SOURCE, flag=True)  # at every rendering
    assert compiled == shown
    if language == "en":
        assert "Sign in|Sign out|Skip to content" in compiled
        assert "Goal of &lt;b&gt;De Linde &amp; co&lt;/b&gt;" in compiled
    else:
        assert "Inloggen|Afmelden|Naar de inhoud" in compiled
    assert "100% zeker, niet vertaald|Nog niet vertaald & <b>ook niet</b>" in compiled


def test_each_language_keeps_its_own_compiled_templates(small_app: Flask) -> None:
    seen = []
    for language in ("nl", "en", "nl", "en"):
        with small_app.test_request_context("/"), force_locale(language):
            seen.append(render_template("page.html", flag=False))
    assert seen[0] == seen[2] and seen[1] == seen[3]
    assert "<p>Afmelden</p>" in seen[0] and "<p>Sign out</p>" in seen[1]


def test_the_pages_switch_language_and_back(client: FlaskClient) -> None:
    def switch(to: str, page: str) -> str:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        client.post("/taal", data={"lang": to, "csrf_token": token.group(1)})
        return client.get("/").text

    dutch = client.get("/").text
    english = switch("en", dutch)
    dutch_again = switch("nl", english)
    assert "Inloggen" in dutch and "Naar de inhoud" in dutch
    assert "Sign in" in english and "Skip to content" in english and "Inloggen" not in english
    assert dutch_again == dutch.replace(_token(dutch), _token(dutch_again))


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


MOMENTS = [
    dt.datetime(2026, 3, 29, 0, 59, 59, tzinfo=dt.UTC),  # before summer time starts
    dt.datetime(2026, 3, 29, 1, 0, 0, tzinfo=dt.UTC),  # 03:00 in Amsterdam
    dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC),  # after summer time ends
    dt.datetime(2026, 12, 31, 23, 30, 45, 999999, tzinfo=dt.UTC),  # already next year
    dt.datetime(2027, 1, 1, 12, 0),  # no zone: UTC, as Flask-Babel takes it
]


@pytest.mark.parametrize("language", ["nl", "en"])
def test_kept_dates_times_and_numbers_read_as_flask_babel_writes_them(
    app: Flask, language: str
) -> None:
    with app.test_request_context("/"), force_locale(language):
        for _twice in range(2):  # made, then kept
            for moment in MOMENTS:
                for style in ("short", "medium", "long"):
                    date = str(babel_date(moment, style))
                    time = str(babel_time(moment, "short"))
                    assert formatting.when(moment, style) == (
                        str(i18n.language().locale.datetime_formats[style])
                        .replace("{1}", date)
                        .replace("{0}", time)
                    )
                stamp = Timestamp()
                stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
                assert formatting.day(stamp) == str(babel_date(moment, "long"))
            for value in (0, 7, 7.0, 30.5, 53.125, 1234.5, 1234567.891, Decimal("1.10")):
                assert formatting.decimal(value, measures.TWO_DECIMALS) == str(
                    babel_decimal(value, "#,##0.##")
                )
                assert formatting.decimal(value, formatting.ONE_DECIMAL) == str(
                    babel_decimal(value, "#,##0.#")
                )
