"""Story: a clinician shares two studies with two physicians through the wizard."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from sharing.models import Bucket, Share
from tests.e2e.browser import log_in, watch_console
from tests.e2e.conftest import screenshot
from tests.factories import build_story_world
from tests.fixtures_services import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

MESSAGE = "Please compare with the CT of last year. Call me on 0475 12 34 56."


def test_it_shares_two_studies_with_two_recipients(site, clipboard_context, page):
    world = build_story_world()
    problems = watch_console(page)
    valid_till = timezone.localdate() + datetime.timedelta(days=14)

    # The clinician logs in through the form and lands on the overview.
    page.goto(site.url + "/")
    screenshot(page, "a01-login")
    log_in(page, site.url, "dr-sender", next_url="")
    assert page.locator("h1").inner_text() == "Overview"
    page.check(f"#select-study-{world.ct.pk}")
    page.check(f"#select-study-{world.mr.pk}")
    assert page.inner_text("#share-hint") == "2 studies selected."
    screenshot(page, "a02-overview-selected")
    page.click("#share-button")

    # Step 1: both studies are there, checked.
    page.wait_for_url("**/share/wizard/*/studies/")
    assert page.locator("input[name='studies-studies']:checked").count() == 2
    screenshot(page, "a03-wizard-studies")
    page.click(".wizard-actions .button-primary")

    # Step 2: one recipient by quick search, one from the favorites.
    page.wait_for_url("**/share/wizard/*/recipients/")
    first = page.locator("[data-row]").nth(0)
    first.locator(".recipient-query").fill("maes")
    first.locator(".recipient-results [data-key]", has_text="Lucas Maes").click()
    assert first.locator(".recipient-name").inner_text() == "Dr. Lucas Maes"
    first.locator("input[name$='-require_otp']").check()
    first.locator("input[name$='-send_mail']").check()
    page.click("#recipient-add")
    second = page.locator("[data-row]").nth(1)
    second.locator(".favorites-toggle").click()
    second.locator(".recipient-favorites [data-key]", has_text="Emma Willems").click()
    assert second.locator(".recipient-name").inner_text() == "Dr. Emma Willems"
    # Already a favorite: no "Add to favorites" star for her.
    assert second.locator("[data-note='favorite']").is_visible()
    assert not second.locator("input[name$='-star']").is_visible()
    second.locator("input[name$='-require_otp']").check()
    second.locator("input[name$='-send_mail']").check()
    screenshot(page, "a04-wizard-recipients")
    page.click(".wizard-actions .button-primary")

    # Step 3: every parameter.
    page.wait_for_url("**/share/wizard/*/parameters/")
    assert "Dr. Lucas Maes" in page.inner_text("main")
    page.check("input[name='parameters-access'][value='write']")
    page.fill("[name='parameters-reason']", "Second opinion before the tumour board")
    page.select_option("[name='parameters-language']", "fr")
    page.fill("[name='parameters-valid_until']", valid_till.strftime("%d/%m/%Y"))
    page.check("[name='parameters-patient_agreed']")
    page.check("[name='parameters-add_label']")
    page.select_option("[name='parameters-label']", label="Oncology")
    page.check("input[name='parameters-label_scope'][value='user']")
    page.check("[name='parameters-urgent']")
    page.fill("[name='parameters-message']", MESSAGE)
    screenshot(page, "a05-wizard-parameters")
    page.click(".wizard-actions .button-primary")

    # Step 4: the pop-up shows what was shared.
    page.wait_for_url("**/share/*/")
    dialog = page.locator("#share-info-dialog")
    dialog.wait_for(state="visible")
    shown = dialog.inner_text()
    for expected in (
        "Jan Peeters",
        "Marie Janssens",
        "Dr. Lucas Maes",
        "Dr. Emma Willems",
        "Images and write access to the report",
        valid_till.strftime("%d/%m/%Y"),
        "Français",
        "Urgent",
        "Oncology",
        MESSAGE,
    ):
        assert expected in shown, expected
    assert "tumour board" not in shown  # the reason stays with the sender
    screenshot(page, "a06-confirmation")

    # "Copy this information" puts the same information on the clipboard.
    dialog.locator("button:has-text('Copy this information')").click()
    expect(page.locator("#share-info-status")).to_have_text("Copied to the clipboard.")
    copied = page.evaluate("navigator.clipboard.readText()")
    for expected in (
        "Jan Peeters",
        "Marie Janssens",
        "Dr. Lucas Maes",
        "Dr. Emma Willems",
        valid_till.strftime("%d/%m/%Y"),
        "Français",
        "Oncology",
        "Urgent",
        MESSAGE,
    ):
        assert expected in copied, expected
    assert copied == page.input_value("#share-info-text")

    # One share, two buckets with two-factor and mail; both mails arrive, urgent,
    # with links to this server.
    share = Share.objects.get()
    assert set(share.studies.all()) == {world.ct, world.mr}
    assert (share.access, share.language, share.urgent) == ("write", "fr", True)
    assert share.valid_until == valid_till and share.label == world.label
    buckets = Bucket.objects.filter(share=share)
    assert {b.recipient_user for b in buckets} == {world.recipient, world.favorite}
    assert all(b.require_otp and b.send_mail for b in buckets)
    mails = wait_for(lambda: len(site.smtp.messages) == 2 and site.smtp.messages)
    assert {m.rcpt_tos[0] for m in mails} == {
        "lucas.maes@example.org",
        "emma.willems@example.org",
    }
    for mail in mails:
        # (the parser keeps the folding space of the encoded header)
        assert mail.subject.strip().startswith("Urgent"), mail.subject
        assert site.url + "/b/" in mail.text

    # "Share again": back at the recipients step with the same two studies.
    dialog.locator("a:has-text('Share again')").click()
    page.wait_for_url("**/share/wizard/*/recipients/")
    summary = page.inner_text(".wizard-summary")
    assert "2 studies to share" in summary
    assert "Peeters" in summary and "Janssens" in summary
    assert page.locator("[data-row]").count() == 1
    screenshot(page, "a07-share-again")
    assert problems == []
