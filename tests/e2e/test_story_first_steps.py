"""Stories in Chromium (issue 14, items 10 and 14): the detailed-search dialog
shows the criteria of the kind chosen; a recipient of no department lands on
"Shared with me" in their language and, after the code, on the study asked for."""

import datetime
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import log_in, watch_console
from tests.e2e.conftest import screenshot
from tests.factories import (
    BucketFactory,
    ShareFactory,
    UserFactory,
    build_story_world,
)
from tests.sharing.access_helpers import CODE_RE

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def test_the_detailed_search_dialog_shows_the_fields_of_the_kind(site, page):
    world = build_story_world()
    problems = watch_console(page)
    log_in(page, site.url, "dr-sender")
    page.check(f"#select-study-{world.ct.pk}")
    page.click("#share-button")
    page.wait_for_url("**/share/wizard/*/studies/")
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/wizard/*/recipients/")

    page.locator("[data-row]").first.locator(".detailed-search-open").click()
    dialog = page.locator("#detailed-search-body")
    dialog.locator("form").wait_for()
    first_name = dialog.locator("input[name=first_name]")
    group_name = dialog.locator("input[name=name]")
    expect(first_name).to_be_visible()
    expect(group_name).to_be_hidden()
    search = dialog.locator("button[type=submit]")
    expect(search).to_have_class(re.compile(r"\bbutton-primary\b"))
    screenshot(page, "i14-detailed-search-user")

    dialog.locator("input[name=kind][value=group]").check()
    expect(first_name).to_be_hidden()
    expect(group_name).to_be_visible()
    screenshot(page, "i14-detailed-search-group")
    dialog.locator("input[name=kind][value=department]").check()
    expect(group_name).to_be_visible()
    expect(dialog.locator("input[name=last_name]")).to_be_hidden()
    assert problems == []


def test_a_recipient_of_no_department_lands_in_their_language_on_the_study(site, page):
    world = build_story_world()
    gp = UserFactory(
        username="huisarts", language="nl", mobile="+32475998877", first_name="Els"
    )
    share = ShareFactory(
        studies=[world.ct, world.mr],
        sender=world.sender,
        source_department=world.department,
        valid_until=datetime.date(2031, 7, 14),
        label=world.label,
        label_scope="user",
    )
    second = world.mr
    bucket = BucketFactory(share=share, recipient_user=gp, require_otp=True)
    problems = watch_console(page)

    log_in(page, site.url, "huisarts")
    page.wait_for_url("**/shared-with-me/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    screenshot(page, "i14-landing-shared-with-me-nl")

    page.goto(site.url + f"/received/{bucket.pk}/studies/{second.pk}/")
    page.wait_for_url("**/code/")
    expect(page.locator(".code-sent")).to_be_visible()
    screenshot(page, "i14-code-page-two-studies-nl")
    for _ in range(50):
        if site.sms:
            break
        page.wait_for_timeout(100)
    code = CODE_RE.search(site.sms[-1].body).group(1)
    page.fill("input[name=code]", code)
    page.click("form.code-form button[type=submit]")
    page.wait_for_url(f"**/received/{bucket.pk}/studies/{second.pk}/")

    page.goto(site.url + f"/received/{bucket.pk}/")
    expect(page.locator("#share-title")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("14/07/2031")
    expect(page.locator(".facts")).to_contain_text("Oncology")
    screenshot(page, "i14-multi-study-share-nl")
    assert problems == []
