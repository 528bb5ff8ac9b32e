"""The web front in a real browser (the system's Chromium) against the real services, the
local issuer and the web app as processes.

Every page a test visits is checked with axe-core (WCAG 2.1 A/AA: no serious or critical
violation) and photographed at desktop and phone width into build/screenshots/.
"""

from __future__ import annotations

import re
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, ViewportSize, expect

from testkit.idp import repo_root

SCREENSHOTS = repo_root() / "build" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}

AXE = Axe()
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
SECURITY_HEADERS = {
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "permissions-policy",
}
checked: set[str] = set()


def check(page: Page, name: str) -> None:
    """axe on the page as it is now (0 serious or critical), and a screenshot at desktop and
    phone width."""
    page.wait_for_load_state()
    results: Any = AXE.run(page, options=AXE_OPTIONS)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: {bad}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    checked.add(name)


def sign_in(page: Page, username: str, password: str = "demo") -> None:  # noqa: S107
    page.goto("/inloggen")
    page.get_by_label("Gebruikersnaam of e-mailadres").fill(username)
    page.get_by_label("Wachtwoord").fill(password)
    page.get_by_role("button", name="Inloggen").click()
    expect(page.get_by_role("button", name="Afmelden")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Afmelden").click()
    expect(page.get_by_role("heading", name="U bent afgemeld")).to_be_visible()


def nav(page: Page, name: str) -> None:
    """Follow a main-menu link and wait until the new page has loaded (axe and screenshots
    must not run on a document that is being replaced)."""
    link = page.get_by_role("navigation", name="Hoofdmenu").get_by_role(
        "link", name=name, exact=True
    )
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(f"**{href}")


def field_error(page: Page, field_id: str) -> str:
    """The error shown at a field: its own message, linked with aria-describedby."""
    control = page.locator(f"#{field_id}")
    expect(control).to_have_attribute("aria-invalid", "true")
    return page.locator(f"#{field_id}-error").inner_text()


def test_sign_in_keeps_tokens_on_the_server_and_sign_out_ends_the_issuer_session(
    context: BrowserContext, page: Page
) -> None:
    page.goto("/")
    check(page, "start")
    sign_in(page, "dr.jansen")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Eva Jansen")
    check(page, "start-signed-in")
    cookies = context.cookies()
    assert [c["name"] for c in cookies if "127.0.0.1" in c["domain"]] == ["carenet_session"] or {
        c["name"] for c in cookies
    } >= {"carenet_session"}
    session = next(c for c in cookies if c["name"] == "carenet_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert len(session["value"]) < 100 and "." not in session["value"]  # an id, not a token
    response = page.goto("/menukaart")
    assert response is not None
    assert set(response.headers) >= SECURITY_HEADERS
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    sign_out(page)
    page.goto("/inloggen")
    expect(page.get_by_label("Wachtwoord")).to_be_visible()  # the issuer asks again


def test_the_referral_loop_through_the_pages(context: BrowserContext, page: Page) -> None:
    # 1. The municipality's sport coach registers an offer; a missing name is shown at the field.
    sign_in(page, "coach.visser")
    nav(page, "Mijn aanbod")
    check(page, "mijn-aanbod")
    page.get_by_role("link", name="Nieuw aanbod").click()
    page.get_by_role("button", name="Aanbod opslaan").click()
    expect(page).to_have_title(re.compile("^Fout: "))
    assert field_error(page, "display_name") == "Vul de naam van het aanbod in"
    assert field_error(page, "category") == "Kies een categorie"
    check(page, "aanbod-nieuw-fout")
    page.get_by_label("Naam van het aanbod").fill("Wandelclub Strijp")
    page.locator("#offer_id").fill("gm-eindhoven-wandelclub-strijp")
    page.get_by_label("Categorie").select_option(label="Bewegen")
    page.get_by_label("Omschrijving").fill("Elke woensdag een uur wandelen met de buurtsportcoach.")
    page.get_by_label("In gemeenten (CBS-code)").fill("GM0772")
    page.get_by_role("button", name="Aanbod opslaan").click()
    expect(page.get_by_role("status").first).to_contain_text("Wandelclub Strijp")
    page.get_by_role("link", name="Wijzigen: Wandelclub Strijp").click()
    expect(page.get_by_label("Naam van het aanbod")).to_have_value("Wandelclub Strijp")
    page.get_by_label("Naam van het aanbod").fill("")
    page.get_by_role("button", name="Aanbod opslaan").click()
    assert field_error(page, "display_name") == "Vul de naam van het aanbod in"
    expect(page.get_by_label("Omschrijving")).to_have_value(
        "Elke woensdag een uur wandelen met de buurtsportcoach."
    )
    check(page, "aanbod-wijzigen-fout")
    page.get_by_label("Naam van het aanbod").fill("Wandelclub Strijp")
    page.get_by_label("Aantal plaatsen").fill("15")
    page.get_by_role("button", name="Aanbod opslaan").click()
    expect(page.get_by_role("status").first).to_contain_text("is gewijzigd")
    page.get_by_role("button", name=re.compile("Voorstellen voor de menukaart")).click()
    expect(page.get_by_role("row", name=re.compile("Wandelclub Strijp"))).to_contain_text(
        "Voorgesteld"
    )
    sign_out(page)

    # 2. Care-group staff publish it.
    sign_in(page, "admin.zuidoost")
    nav(page, "Curatie")
    check(page, "curatie")
    page.get_by_role("link", name="Wandelclub Strijp").click()
    check(page, "curatie-beoordelen")
    page.get_by_role("button", name="Op de menukaart zetten").click()
    expect(page.get_by_role("status").first).to_contain_text("staat nu op de menukaart")
    sign_out(page)

    # 3. The GP finds it on the menu card and refers p-0001 to it.
    sign_in(page, "dr.jansen")
    nav(page, "Menukaart")
    # organisations by their name from identity, not by id
    strijp = page.get_by_role("row", name=re.compile("Wandelclub Strijp"))
    expect(strijp).to_contain_text("Gemeente Eindhoven")
    expect(page.locator("table")).not_to_contain_text("gli-beweegfit")
    check(page, "menukaart")
    page.get_by_label("Gemeentecode (CBS)").fill("GM0772")
    page.get_by_label("Categorie").select_option(label="Bewegen")
    page.get_by_role("button", name="Filteren").click()
    page.get_by_role("link", name="Wandelclub Strijp").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Wandelclub Strijp")
    expect(page.locator("dl")).to_contain_text("Gemeente Eindhoven")
    check(page, "aanbod")
    nav(page, "Verwijzen")
    page.get_by_label("BSN van de patiënt").fill("123456789")
    page.get_by_role("button", name="Patiënt zoeken").click()
    assert field_error(page, "bsn") == "Vul een geldig BSN in van 9 cijfers"
    check(page, "verwijzen-fout")
    page.get_by_label("BSN van de patiënt").fill("111222333")
    page.get_by_role("button", name="Patiënt zoeken").click()
    assert "111222333" not in page.url
    check(page, "verwijzen-gegevens")
    page.get_by_label("Aandoeningen (ICPC)").fill("T90")
    page.get_by_label("Leeftijd").fill("58")
    page.get_by_label("BMI").fill("31,5")
    page.get_by_label("Postcode (4 cijfers)").fill("5611")
    page.get_by_label("Gemeentecode (CBS)").fill("GM0772")
    page.get_by_role("button", name="Passend aanbod zoeken").click()
    assert "5611" not in page.url and "T90" not in page.url
    check(page, "verwijzen-aanbod")
    page.get_by_role("link", name="Verwijzen naar Wandelclub Strijp").click()
    check(page, "verwijzen-bevestigen")
    page.get_by_label("Reden van verwijzing").fill("DM2, wil meer bewegen in de buurt")
    page.get_by_role("button", name="Verwijzing versturen").click()
    expect(page.get_by_role("status").first).to_contain_text("De verwijzing is verstuurd")
    expect(page.get_by_text("De verwijzing staat als afspraak in het zorgplan.")).to_be_visible()
    referral_url = page.url
    check(page, "verwijzing")
    nav(page, "Mijn verwijzingen")
    expect(page.get_by_role("link", name="Wandelclub Strijp").first).to_be_visible()
    check(page, "mijn-verwijzingen")
    sign_out(page)

    # 4. The coach accepts, starts and completes with feedback (a missing count at its field).
    sign_in(page, "coach.visser")
    nav(page, "Inbox")
    check(page, "inbox")
    page.get_by_role("link", name=re.compile("gm-eindhoven-wandelclub-strijp")).first.click()
    check(page, "inbox-verwijzing")
    page.get_by_role("button", name="Accepteren").click()
    expect(page.get_by_role("status").first).to_contain_text("Geaccepteerd")
    page.get_by_role("button", name="Starten").click()
    expect(page.get_by_role("status").first).to_contain_text("Gestart")
    page.get_by_role("link", name="Afronden met terugkoppeling…").click()
    page.get_by_label("Alles gevolgd").check()
    page.get_by_label("Bijeenkomsten gepland").fill("10")
    page.get_by_label("Resultaat voor de verwijzer").fill("Wandelt nu drie keer per week.")
    page.get_by_role("button", name="Afronden en terugkoppelen").click()
    assert field_error(page, "sessions_attended") == "Vul een heel getal in"
    expect(page.get_by_label("Resultaat voor de verwijzer")).to_have_value(
        "Wandelt nu drie keer per week."
    )
    check(page, "inbox-afronden-fout")
    page.get_by_label("Bijeenkomsten bijgewoond").fill("9")
    page.get_by_role("button", name="Afronden en terugkoppelen").click()
    expect(page.get_by_role("status").first).to_contain_text("Afgerond")
    sign_out(page)

    # 5. The GP sees the feedback.
    sign_in(page, "dr.jansen")
    page.goto(referral_url)
    expect(page.locator("#feedback")).to_contain_text("Wandelt nu drie keer per week.")
    expect(page.locator("#feedback")).to_contain_text("9 van 10")
    sign_out(page)

    # 6. The patient sees the linked action done in her plan, and in Privacy who looked.
    sign_in(page, "pat.dewit")
    nav(page, "Mijn zorgplan")
    row = page.locator("#actions").get_by_role("row", name=re.compile("Wandelclub Strijp"))
    for _attempt in range(50):  # careplan follows the referral's events
        if "Klaar" in row.inner_text():
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(row).to_contain_text("Klaar")
    # names for ids, and the goal's measure in Dutch (the demo plan stores English text)
    expect(page.locator("#actions")).to_contain_text("Huisartsenpraktijk De Linde")
    expect(page.locator("#participants")).to_contain_text("BeweegFit GLI")
    expect(page.locator("#goals")).to_contain_text("Minuten wandelen per dag: minstens 30")
    expect(page.locator("main")).not_to_contain_text("minutes walked")
    expect(page.locator("main")).not_to_contain_text("gp-de-linde")
    check(page, "zorgplan")
    page.get_by_role("link", name="Wie veranderde wat").click()
    check(page, "zorgplan-geschiedenis")
    nav(page, "Privacy")
    log = page.locator("#access-log")
    expect(log).to_contain_text("Huisartsenpraktijk De Linde")
    expect(log).to_contain_text("Gemeente Eindhoven")
    check(page, "privacy")


def test_the_referral_works_with_the_keyboard_alone(platform: Any, page: Page) -> None:
    sign_in(page, "poh.bakker")

    def tab_to(name: str, limit: int = 80, *, prefix: bool = False) -> None:
        page.wait_for_load_state()
        for _ in range(limit):
            page.keyboard.press("Tab")
            focused = page.evaluate(
                "() => (document.activeElement.innerText || document.activeElement.value"
                " || document.activeElement.getAttribute('aria-label') || '').trim()"
            )
            if (
                focused == name
                or (prefix and focused.startswith(name))
                or (
                    page.evaluate("() => document.activeElement.labels?.[0]?.innerText.trim()")
                    or ""
                ).startswith(name)
            ):
                return
        raise AssertionError(f"{name!r} cannot be reached with Tab")

    def follow() -> None:
        with page.expect_navigation():
            page.keyboard.press("Enter")

    page.goto("/")
    tab_to("Verwijzen")
    follow()
    tab_to("BSN van de patiënt")
    page.keyboard.type("123456782")
    follow()
    tab_to("Aandoeningen (ICPC)")
    page.keyboard.type("T90")
    tab_to("Gemeentecode (CBS)")
    page.keyboard.type("GM0772")
    tab_to("Passend aanbod zoeken")
    follow()
    expect(page.get_by_role("heading", name="Passend aanbod")).to_be_visible()
    tab_to("Verwijzen naar ", prefix=True)  # the best match, whichever it is
    follow()
    tab_to("Reden van verwijzing")
    page.keyboard.type("Wil samen met anderen bewegen")
    tab_to("Verwijzing versturen")
    follow()
    expect(page.get_by_role("status").first).to_contain_text("De verwijzing is verstuurd")


def test_a_form_posted_without_the_csrf_token_is_refused(
    context: BrowserContext, page: Page
) -> None:
    sign_in(page, "pat.dewit")
    response = context.request.post(
        "/privacy", form={"category": "2", "holder": "2", "requester": "3"}
    )
    assert response.status == 400
    assert "Verzoek niet verwerkt" in response.text()
    page.goto("/privacy")
    expect(page.locator("#consents")).not_to_contain_text("Ziekenhuis Ziekenhuis")


def test_a_person_without_the_role_gets_the_403_page(page: Page) -> None:
    sign_in(page, "pat.yilmaz")
    response = page.goto("/menukaart")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Geen toegang")
    check(page, "403")
    response = page.goto("/inbox")
    assert response is not None and response.status == 403
    response = page.goto("/menukaart/bestaat-niet")
    assert response is not None and response.status == 403
    sign_out(page)
    sign_in(page, "dr.jansen")
    response = page.goto("/menukaart/bestaat-niet")
    assert response is not None and response.status == 404
    check(page, "404")
    response = page.goto("/verwijzingen/p-0003/x")
    assert response is not None and response.status in (403, 404)
    assert "Traceback" not in page.content()


def test_a_conflicting_plan_edit_keeps_what_was_typed(context: BrowserContext) -> None:
    first, second = context.new_page(), context.new_page()
    sign_in(first, "pat.dewit")
    first.goto("/zorgplan")
    second.goto("/zorgplan")
    first.get_by_label("Wat voor mij belangrijk is").fill("Met de kleinkinderen naar het bos")
    first.get_by_role("button", name="Zorgplan opslaan").click()
    expect(first.get_by_role("status").first).to_contain_text("opgeslagen")
    typed = "Weer zelf boodschappen doen\nFietsen naar de markt"
    second.get_by_label("Wat voor mij belangrijk is").fill(typed)
    second.get_by_label("Nieuw doel").fill("Elke dag een half uur wandelen")
    second.get_by_role("button", name="Zorgplan opslaan").click()
    expect(second.locator("#conflict")).to_be_visible()
    expect(second.locator("#what-matters")).to_contain_text("Met de kleinkinderen naar het bos")
    expect(second.get_by_label("Wat voor mij belangrijk is")).to_have_value(typed)
    expect(second.get_by_label("Nieuw doel")).to_have_value("Elke dag een half uur wandelen")
    check(second, "zorgplan-conflict")
    second.get_by_role("button", name="Zorgplan opslaan").click()
    expect(second.get_by_role("status").first).to_contain_text("opgeslagen")
    expect(second.locator("#what-matters")).to_contain_text("Fietsen naar de markt")


def test_privacy_consent_given_and_withdrawn(page: Page) -> None:
    sign_in(page, "pat.yilmaz")
    page.goto("/privacy")
    page.get_by_role("button", name="Toestemming geven").click()
    assert field_error(page, "category") == "Kies welke gegevens"
    page.get_by_label("Welke gegevens").select_option(label="Verwijzingen")
    page.get_by_label("Van wie (wie heeft de gegevens)").select_option(label="Huisartsenpraktijk")
    page.get_by_label("Wie mag ze zien").select_option(label="Gemeente")
    page.get_by_role("button", name="Toestemming geven").click()
    expect(page.get_by_role("status").first).to_contain_text("opgeslagen")
    row = page.locator("#consents").get_by_role("row", name=re.compile("Verwijzingen.*Gemeente"))
    expect(row).to_contain_text("Gegeven")
    row.get_by_role("link", name=re.compile("^Intrekken")).click()
    check(page, "privacy-intrekken")
    page.get_by_role("button", name="Toestemming intrekken").click()
    expect(page.get_by_role("status").first).to_contain_text("ingetrokken")


def test_outcomes_show_suppressed_cells_as_suppressed(page: Page) -> None:
    sign_in(page, "analist.peters")
    nav(page, "Uitkomsten")
    check(page, "uitkomsten")
    page.locator("table a").first.click()
    check(page, "uitkomsten-rapport")
    wide = page.locator(".carenet-wide-only")
    charts = wide.locator("figure svg[role=img]")
    assert charts.count() >= 1
    assert charts.first.locator("title").text_content()
    assert wide.locator("figure figcaption").count() == charts.count()
    # a suppressed cell is a mark in the table and in the chart, never a number
    rows = wide.locator("tbody tr")
    marks_in_tables = 0
    for index in range(rows.count()):
        cells = rows.nth(index).locator("td")
        if cells.count() == 1:
            assert cells.first.inner_text() in ("< 10", "x")
            marks_in_tables += 1
    marks_in_charts = wide.locator("svg text.carenet-chart__suppressed").count()
    assert marks_in_tables == marks_in_charts
    assert marks_in_tables >= 1, "the demo report has small cells"
    # at phone width: per indicator its key figures and a chart of the care group and its
    # practices, the strata behind a summary (closed); the page a few screens long
    page.set_viewport_size(PHONE)
    assert wide.first.is_hidden()
    narrow = page.locator(".carenet-narrow-only")
    expect(narrow.first).to_be_visible()
    strata = narrow.locator("details")
    assert strata.count() >= charts.count()
    assert not strata.first.evaluate("d => d.open")
    phone_height = page.evaluate("() => document.documentElement.scrollHeight")
    assert phone_height < 12_000, phone_height
    strata.first.locator("summary").click()
    opened = strata.first.locator("tbody tr")
    expect(opened.first).to_be_visible()
    for index in range(opened.count()):
        cells = opened.nth(index).locator("td")
        if cells.count() == 1:
            assert cells.first.inner_text() in ("< 10", "x")
    phone_marks = narrow.locator("tbody td[colspan]").count()
    phone_chart_marks = narrow.locator("svg text.carenet-chart__suppressed").count()
    assert phone_marks >= phone_chart_marks  # the strata tables hold the rest
    page.set_viewport_size(DESKTOP)
    csv_link = page.get_by_role("link", name="Download als CSV").get_attribute("href")
    assert csv_link is not None
    text = page.request.get(csv_link).text()
    cells_part = text.split("\r\n\r\n")[0]
    lines = cells_part.splitlines()
    assert lines[0].startswith("indicator;versie;groep;teller")
    suppressed = [line.split(";") for line in lines[1:] if line.split(";")[-1]]
    assert len(suppressed) == marks_in_tables
    assert all(fields[3:8] == [""] * 5 for fields in suppressed)
    # the contract's financing evaluation with the trace of each amount, in the page and the CSV
    financing = page.locator("#financing")
    expect(financing).to_be_visible()
    assert financing.locator("tbody tr").count() >= 1
    assert "bedrag;waarde;formule;invoer" in text


def test_unavailable_service_gives_the_503_page(platform: Any, page: Page) -> None:
    """One service down: the front stays ready (its pods stay in the Service), the pages
    that need that service show the 503 page, every other page keeps working."""
    sign_in(page, "analist.peters")
    ready = page.request.get("/readyz")
    assert ready.status == 200, ready.text()
    platform.services["outcomes"].stop()
    response = page.goto("/uitkomsten")
    assert response is not None and response.status == 503
    expect(page.get_by_role("heading", level=1)).to_have_text("Even niet beschikbaar")
    check(page, "503")
    ready = page.request.get("/readyz")
    assert ready.status == 200, ready.text()
    assert ready.json()["status"] == "ok"
    response = page.goto("/menukaart")  # referral and identity are still up
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Menukaart")


def test_the_front_logs_no_patient_id_or_bsn(platform: Any) -> None:
    """After all the pages above: the front's log (gunicorn's access log is off; errors name
    the route pattern) holds no patient id and no BSN typed in the pages."""
    log = "\n".join(platform.web.lines)
    assert "grpc_error route=" in log  # the tests above did make the front log errors
    for secret in ("p-0001", "p-0002", "p-0003", "111222333", "123456782", "123456789"):
        assert secret not in log, secret


def test_the_other_pages_in_both_languages(page: Page) -> None:
    page.goto("/toegankelijkheid")
    check(page, "toegankelijkheid")
    page.goto("/privacyverklaring")
    check(page, "privacyverklaring")
    sign_in(page, "dr.jansen")
    page.goto("/patienten/p-0001/zorgplan")
    expect(page.get_by_role("heading", level=1)).to_have_text("Zorgplan van patiënt p-0001")
    expect(page.get_by_label("Wat voor mij belangrijk is")).to_have_count(0)
    expect(page.locator("#goals")).to_contain_text("HbA1c (gemiddelde bloedsuiker)")
    check(page, "zorgplan-professional")
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Care plan of patient p-0001")
    expect(page.locator("#goals")).to_contain_text("Minutes walked a day: at least 30")
    check(page, "zorgplan-professional-en")
    page.goto("/menukaart")
    expect(page.get_by_role("heading", level=1)).to_have_text("Menu card")
    check(page, "menukaart-en")
    page.get_by_role("button", name="Nederlands").click()
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    page.get_by_role("button", name="Afmelden").click()
    expect(page.get_by_role("heading", name="U bent afgemeld")).to_be_visible()
    check(page, "afgemeld")
