"""Accessibility: axe-core finds no serious or critical violation on the pages of
the stories, and the share wizard can be completed with the keyboard alone.

axe-core (tests/e2e/vendor/axe.min.js, MPL-2.0, from the npm registry) is loaded
by the test, never served by the app. It runs through page.evaluate, i.e. the
DevTools protocol, which the pages' Content Security Policy does not govern.
"""

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from sharing.models import Bucket, Share
from tests.e2e.browser import image_loaded, log_in, watch_console
from tests.e2e.conftest import SCREENSHOTS, screenshot
from tests.factories import PASSWORD, build_story_world
from tests.fixtures_services import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
RUN_AXE = (
    "(async () => {\n"
    + AXE_SOURCE
    + "\n;const result = await axe.run(document, {resultTypes: ['violations']});"
    "\nreturn result.violations.map(v => ({id: v.id, impact: v.impact,"
    " help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));"
    "\n})()"
)


def assert_accessible(page, name):
    """Fail on axe's serious and critical violations; keep every finding in
    screenshots/axe-report.json for a human to read (moderate ones included)."""
    violations = page.evaluate(RUN_AXE)
    REPORT[name] = violations
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / "axe-report.json").write_text(json.dumps(REPORT, indent=2))
    found = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert found == [], f"{name}: {found}"


REPORT = {}


def test_it_has_no_serious_axe_violation(site, page):
    world = build_story_world()
    problems = watch_console(page)

    # The overview, and each step of the wizard.
    log_in(page, site.url, "dr-sender")
    assert_accessible(page, "overview")
    page.check(f"#select-study-{world.ct.pk}")
    page.click("#share-button")
    page.wait_for_url("**/share/wizard/*/studies/")
    assert_accessible(page, "wizard studies")
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/wizard/*/recipients/")
    row = page.locator("[data-row]").first
    row.locator(".recipient-query").fill("maes")
    row.locator(".recipient-results [data-key]").first.wait_for()
    assert_accessible(page, "wizard recipients, search results open")
    row.locator(".recipient-results [data-key]").first.click()
    page.click("#recipient-add")
    second = page.locator("[data-row]").nth(1)
    second.locator(".favorites-toggle").click()
    second.locator(".recipient-favorites [data-key]").first.wait_for()
    assert_accessible(page, "wizard recipients, favorites open")
    second.locator(".detailed-search-open").click()
    page.locator("#detailed-search-body form").wait_for()
    assert_accessible(page, "wizard recipients, detailed search open")
    page.click("#detailed-search-dialog [data-close-dialog]")
    second.locator(".recipient-favorites [data-key]").first.click()
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/wizard/*/parameters/")
    assert_accessible(page, "wizard parameters")
    page.click(".wizard-actions .button-primary")  # without "Patient agreed": errors
    page.locator(".field-patient_agreed .field-error").wait_for()
    assert_accessible(page, "wizard parameters with errors")
    page.fill("[name='parameters-reason']", "Second opinion")
    page.check("[name='parameters-patient_agreed']")
    page.fill("[name='parameters-message']", "Please look at the left lower lobe.")
    page.click(".wizard-actions .button-primary")
    page.locator("#share-info-dialog").wait_for(state="visible")
    assert_accessible(page, "confirmation pop-up")

    # The recipient: the SMS code page and the viewer of the received study.
    bucket = Bucket.objects.get(recipient_user=world.recipient)
    page.context.clear_cookies()
    log_in(page, site.url, "dr-recipient")
    page.goto(site.url + f"/received/{bucket.pk}/")
    page.wait_for_url("**/code/")
    assert_accessible(page, "SMS code page")
    sms = wait_for(lambda: site.sms and site.sms[-1])
    page.fill("input[name=code]", re.search(r"\d{6}", sms.body).group(0))
    page.click("button:has-text('Open the study')")
    page.wait_for_url(f"**/received/{bucket.pk}/studies/{world.ct.pk}/")
    assert image_loaded(page)
    assert_accessible(page, "received study (viewer)")
    page.click(".viewer-series-message")
    page.wait_for_load_state()
    assert_accessible(page, "received study, Message series")
    page.goto(site.url + "/shared-with-me/")
    assert_accessible(page, "shared with me")
    assert problems == []


def tab_to(page, selector, limit=80):
    """Press Tab until the focused element matches ``selector`` (no mouse)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_it_completes_the_wizard_with_the_keyboard_alone(site, clipboard_context, page):
    world = build_story_world()
    problems = watch_console(page)
    page.goto(site.url + "/login/")
    page.keyboard.press("Tab")  # the skip link, then into the form
    tab_to(page, "input[name=username]")
    page.keyboard.type("dr-sender")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/overview/")

    # Overview: Space ticks two studies, Enter on the button starts the wizard.
    tab_to(page, f"#select-study-{world.ct.pk}")
    page.keyboard.press("Space")
    tab_to(page, f"#select-study-{world.mr.pk}")
    page.keyboard.press("Space")
    tab_to(page, "#share-button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/share/wizard/*/studies/")
    tab_to(page, "button.button-primary")
    page.keyboard.press("Enter")

    # Recipients: type and Enter picks the first result; the favorites list opens
    # with Enter and its first entry is chosen with Enter.
    page.wait_for_url("**/share/wizard/*/recipients/")
    tab_to(page, ".recipient-query")
    page.keyboard.type("maes")
    page.locator(".recipient-results [data-key]").first.wait_for()
    page.keyboard.press("Enter")
    first = page.locator("[data-row]").first
    expect(first.locator(".recipient-name")).to_have_text("Dr. Lucas Maes")
    tab_to(page, "#recipient-add")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.matches('.recipient-query')")
    tab_to(page, "[data-row]:nth-child(2) .favorites-toggle")
    page.keyboard.press("Enter")
    page.locator(".recipient-favorites [data-key]").first.wait_for()
    assert page.evaluate("document.activeElement.matches('[data-key]')")
    page.keyboard.press("Enter")
    second = page.locator("[data-row]").nth(1)
    expect(second.locator(".recipient-name")).to_have_text("Dr. Emma Willems")
    # Two-factor off for her, with Space.
    tab_to(page, "[data-row]:nth-child(2) input[name$='-require_otp']")
    page.keyboard.press("Space")
    screenshot(page, "k01-keyboard-recipients")
    tab_to(page, "button.button-primary")
    page.keyboard.press("Enter")

    # Parameters: type, choose with arrows and Space; Enter in a text field goes
    # forward (never back to the previous step).
    page.wait_for_url("**/share/wizard/*/parameters/")
    tab_to(page, "input[name='parameters-access']:checked")
    page.keyboard.press("ArrowDown")  # write access
    tab_to(page, "[name='parameters-reason']")
    page.keyboard.type("Second opinion")
    tab_to(page, "[name='parameters-patient_agreed']")
    page.keyboard.press("Space")
    tab_to(page, "[name='parameters-urgent']")
    page.keyboard.press("Space")
    tab_to(page, "[name='parameters-message']")
    page.keyboard.type("Please compare with last year.")
    page.keyboard.press("Shift+Tab")
    for _ in range(10):
        if page.evaluate("document.activeElement.name") == "parameters-valid_until":
            break
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")

    # The pop-up has the focus; Enter on "Copy this information" copies.
    page.locator("#share-info-dialog").wait_for(state="visible")
    tab_to(page, "#share-info-copy")
    page.keyboard.press("Enter")
    expect(page.locator("#share-info-status")).to_have_text("Copied to the clipboard.")
    screenshot(page, "k02-keyboard-confirmation")
    shared = Share.objects.get()
    assert (shared.access, shared.urgent) == ("write", True)
    assert shared.message == "Please compare with last year."
    options = {b.recipient_user.username: b.require_otp for b in shared.buckets.all()}
    assert options == {"dr-recipient": True, "dr-favorite": False}
    assert problems == []


@pytest.mark.parametrize("width", [320, 390])
def test_every_tab_is_in_sight_on_a_phone(live_server, page, width):
    """On a phone, the main navigation and the overview's tabs wrap rather than
    run off the screen: a clinician sees (and can tap) every one."""
    build_story_world()
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, live_server.url, "dr-sender")
    links = page.locator(".topnav a, .tabs .tab")
    assert links.count() >= 5  # overview, favorites, status; the two tabs
    for index in range(links.count()):
        box = links.nth(index).bounding_box()
        assert box is not None and box["width"] > 0
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, links.nth(
            index
        ).inner_text()
