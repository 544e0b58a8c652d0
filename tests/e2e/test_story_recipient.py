"""Story: the recipient follows the mailed link, is locked out by five wrong SMS
codes, is unlocked by the department admin in Django admin, then sees the study,
its "Message" series and edits the report."""

import re

import pytest

from sharing.models import Bucket, OTPDevice
from studies.models import Report
from tests.e2e.browser import image_loaded, log_in, watch_console
from tests.e2e.conftest import screenshot
from tests.factories import MESSAGE, build_story_world, share_through_service
from tests.fixtures_services import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

LINK = re.compile(r"https?://\S+/b/[A-Za-z0-9_-]+/")


def _code(sms):
    return re.search(r"\b(\d{6})\b", sms.body).group(1)


def _wrong(code):
    return f"{(int(code) + 1) % 1000000:06d}"


def test_it_locks_unlocks_and_opens_the_study(site, page, browser, monkeypatch):
    world = build_story_world()
    # A minute of resend cool-down is real but would only slow the story down.
    monkeypatch.setattr(OTPDevice, "COOLDOWN_SECONDS", 1)
    problems = watch_console(page)
    share_through_service(
        sender=world.sender,
        recipient=world.recipient,
        studies=[world.ct],
        message=MESSAGE,
        access="write",
    )
    bucket = Bucket.objects.get()

    # The mail arrives through the worker and the SMTP server; its link works.
    mail = wait_for(lambda: site.smtp.messages and site.smtp.messages[0])
    assert mail.rcpt_tos == ["lucas.maes@example.org"]
    assert MESSAGE in mail.text
    link = LINK.search(mail.text).group(0)
    assert link.startswith(site.url)
    page.goto(link)
    assert "/login/" in page.url and "/b/" not in page.url
    log_in(page, site.url, "dr-recipient", next_url=page.url)

    # Opening the bucket sends the SMS code.
    page.wait_for_url(f"**/received/{bucket.pk}/code/")
    first_sms = wait_for(lambda: site.sms and site.sms[0])
    assert first_sms.to == "+32475112233"
    assert "··33" in page.inner_text(".code-sent")
    screenshot(page, "b01-code")
    right = _code(first_sms)

    # Five wrong codes lock the share.
    for attempt in range(1, 6):
        page.fill("input[name=code]", _wrong(right))
        page.click("button:has-text('Open the study')")
        page.wait_for_load_state()
        if attempt == 2:
            assert "After 3 more wrong codes" in page.inner_text(".field-error")
            screenshot(page, "b02-code-wrong")
    assert "locked" in page.inner_text("h1").lower()
    assert "Radiology Alpha" in page.inner_text("main")
    screenshot(page, "b03-locked")
    # Even the right code cannot open it now.
    page.goto(site.url + f"/received/{bucket.pk}/")
    assert "locked" in page.inner_text("h1").lower()
    assert page.locator("input[name=code]").count() == 0
    # The department's admin is told by mail.
    wait_for(
        lambda: any("admin-alpha@example.org" in m.rcpt_tos for m in site.smtp.messages)
    )

    # The department admin unlocks the bucket in Django admin.
    admin_context = browser.new_context(viewport={"width": 1280, "height": 800})
    admin_page = admin_context.new_page()
    log_in(admin_page, site.url, "admin-alpha")
    admin_page.goto(site.url + "/admin/sharing/bucket/")
    row = admin_page.locator("#result_list tbody tr", has_text="Lucas Maes")
    assert "Locked" in row.inner_text()
    screenshot(admin_page, "b04-admin-buckets-locked")
    row.locator("input.action-select").check()
    admin_page.select_option("select[name=action]", label="Unlock selected buckets")
    admin_page.click("button[name=index]")
    admin_page.wait_for_load_state()
    assert "1 bucket unlocked." in admin_page.inner_text(".messagelist")
    screenshot(admin_page, "b05-admin-unlocked")
    admin_context.close()

    # Before opening: the "Message" label of the received study is red.
    page.goto(site.url + "/shared-with-me/")
    label = page.locator(".col-labels .badge", has_text="Message")
    assert "badge-message-unread" in label.get_attribute("class")
    screenshot(page, "b06-shared-with-me-unread")

    # Back on the code page a new code is sent; the right one opens the study.
    page.goto(site.url + f"/received/{bucket.pk}/")
    page.wait_for_url(f"**/received/{bucket.pk}/code/")
    if len(site.sms) < 2:
        page.click("#resend-button")
        page.wait_for_load_state()
    second_sms = wait_for(lambda: len(site.sms) >= 2 and site.sms[-1])
    page.fill("input[name=code]", _code(second_sms))
    page.click("button:has-text('Open the study')")
    page.wait_for_url(f"**/received/{bucket.pk}/studies/{world.ct.pk}/")

    # The images load, the "Message" series is there, the report is editable.
    assert image_loaded(page)
    main = page.inner_text("main")
    assert "Peeters" in main and MESSAGE in main
    assert "tumour board" not in main
    screenshot(page, "b07-received-study")
    page.click(".viewer-series-message")
    page.wait_for_load_state()
    assert MESSAGE in page.inner_text("#viewer-message")
    screenshot(page, "b08-message-series")
    page.click(".viewer-series-entry:not(.viewer-series-message)")
    page.wait_for_load_state()
    assert image_loaded(page)
    report = page.locator("#viewer-report textarea")
    assert "Nodule of 4 mm" in report.input_value()
    report.fill("Nodule of 4 mm in the left lower lobe. Follow-up CT in 3 months.")
    page.click("button:has-text('Save report')")
    page.wait_for_load_state()
    assert "The report was saved." in page.inner_text(".messages")
    assert Report.objects.get(study=world.ct).text.endswith("CT in 3 months.")
    screenshot(page, "b09-report-saved")

    # After opening: the label is green.
    page.goto(site.url + "/shared-with-me/")
    label = page.locator(".col-labels .badge", has_text="Message")
    assert "badge-message-read" in label.get_attribute("class")
    red, green, blue = _rgb(label.evaluate("el => getComputedStyle(el).color"))
    assert green > red and green > blue
    screenshot(page, "b10-shared-with-me-read")
    assert problems == []


def _rgb(css):
    return [int(v) for v in re.findall(r"\d+", css)[:3]]
