"""Curatie with a reason, in a real browser: the care group's staff reject a proposed offer
with a reason, which is required (its error shown at the field, the GOV.UK way), and the
offer's owner reads that reason in Mijn aanbod."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .test_pages import check, field_error, nav, sign_in, sign_out

OFFER = "Beweegmaatje Noord"
REASON = "Er is nog geen erkenning van het programma. Vraag die eerst aan."


def test_staff_reject_with_a_reason_and_the_owner_reads_it(page: Page) -> None:
    # the lifestyle provider registers an offer and proposes it
    sign_in(page, "coach.degroot")
    nav(page, "Mijn aanbod")
    page.get_by_role("link", name="Nieuw aanbod").click()
    page.get_by_label("Naam van het aanbod").fill(OFFER)
    page.get_by_label("Categorie").select_option(label="Bewegen")
    page.get_by_role("button", name="Aanbod opslaan").click()
    expect(page.get_by_role("status").first).to_contain_text(OFFER)
    page.get_by_role("button", name=f"Voorstellen voor de menukaart: {OFFER}").click()
    expect(page.get_by_role("row", name=re.compile(OFFER))).to_contain_text("Voorgesteld")
    sign_out(page)

    # care-group staff reject it: first without a reason (the error at the field), then with
    sign_in(page, "admin.zuidoost")
    nav(page, "Curatie")
    page.get_by_role("link", name=OFFER).click()
    page.get_by_role("button", name="Aanbod afwijzen").click()
    expect(page).to_have_title(re.compile("^Fout: "))
    assert field_error(page, "reason") == "Vul de reden in voor de aanbieder"
    summary = page.locator("#error-summary")
    expect(summary.get_by_role("link", name="Vul de reden in voor de aanbieder")).to_have_attribute(
        "href", "#reason"
    )
    check(page, "curatie-afwijzen-fout")
    # nothing was decided: the offer still waits
    nav(page, "Curatie")
    expect(page.get_by_role("link", name=OFFER)).to_be_visible()
    page.get_by_role("link", name=OFFER).click()
    page.get_by_label("Reden voor de aanbieder").fill(REASON)
    page.get_by_role("button", name="Aanbod afwijzen").click()
    expect(page.get_by_role("status").first).to_contain_text(f"{OFFER} is afgewezen")
    expect(page.get_by_role("link", name=OFFER)).to_have_count(0)
    sign_out(page)

    # the owner sees why
    sign_in(page, "coach.degroot")
    nav(page, "Mijn aanbod")
    row = page.get_by_role("row", name=re.compile(OFFER))
    expect(row).to_contain_text("Van de menukaart")
    expect(row).to_contain_text(REASON)
    check(page, "mijn-aanbod-afgewezen")
    sign_out(page)
