"""Story: the refusals a user can meet, as the browser shows them."""

import datetime

import pytest
from django.utils import timezone

from sharing.models import Bucket, Share
from sharing.status.services import bucket_revoke
from tests.e2e.browser import log_in, watch_console
from tests.e2e.conftest import screenshot
from tests.factories import build_story_world, share_through_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def _open_link(page, base_url, bucket, username):
    page.goto(f"{base_url}/b/{bucket.link_token}/")
    log_in(page, base_url, username, next_url=page.url)


def _no_patient(page):
    text = page.inner_text("body")
    assert "Peeters" not in text and "CT thorax" not in text


def test_it_refuses_an_expired_share(live_server, page):
    world = build_story_world()
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    share_through_service(
        sender=world.sender,
        recipient=world.recipient,
        studies=[world.ct],
        valid_until=yesterday,
    )
    bucket = Bucket.objects.get()

    _open_link(page, live_server.url, bucket, "dr-recipient")

    assert page.inner_text("h1") == "This share has expired"
    assert yesterday.strftime("%d/%m/%Y") in page.inner_text("main")
    _no_patient(page)
    screenshot(page, "d01-expired")


def test_it_refuses_a_revoked_share(live_server, page):
    world = build_story_world()
    share_through_service(
        sender=world.sender, recipient=world.recipient, studies=[world.ct]
    )
    bucket = Bucket.objects.get()
    bucket_revoke(bucket=bucket, by=world.admin)

    _open_link(page, live_server.url, bucket, "dr-recipient")

    assert page.inner_text("h1") == "Access to this share was withdrawn"
    assert "Radiology Alpha" in page.inner_text("main")
    _no_patient(page)
    screenshot(page, "d02-revoked")


def test_it_refuses_someone_elses_link(live_server, page):
    world = build_story_world()
    share_through_service(
        sender=world.sender, recipient=world.recipient, studies=[world.ct]
    )
    bucket = Bucket.objects.get()

    _open_link(page, live_server.url, bucket, "dr-outsider")

    assert page.inner_text("h1") == "This share is not for you"
    assert "dr-outsider" in page.inner_text("main")
    _no_patient(page)
    screenshot(page, "d03-not-yours")
    page.goto(f"{live_server.url}/b/{'x' * 43}/")
    assert page.inner_text("h1") == "This link is not valid"
    screenshot(page, "d04-link-invalid")


def test_it_shares_nothing_without_patient_agreement(live_server, page):
    world = build_story_world()
    problems = watch_console(page)
    log_in(page, live_server.url, "dr-sender")
    page.check(f"#select-study-{world.ct.pk}")
    page.click("#share-button")
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/wizard/*/recipients/")
    row = page.locator("[data-row]").first
    row.locator(".recipient-query").fill("Lucas")
    row.locator(".recipient-results [data-key]", has_text="Lucas Maes").click()
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/wizard/*/parameters/")
    page.fill("[name='parameters-reason']", "Second opinion")

    page.click(".wizard-actions .button-primary")

    page.wait_for_load_state()
    assert page.url.endswith("/parameters/") and "/share/wizard/" in page.url
    assert "Please correct the errors below." in page.inner_text("[role=alert]")
    # The checkbox to correct has the focus, scrolled into view.
    assert page.evaluate("document.activeElement.name") == "parameters-patient_agreed"
    error = page.locator(".field-patient_agreed .field-error")
    assert (
        "Without the patient's agreement nothing can be shared." in error.inner_text()
    )
    assert page.locator("[name='parameters-reason']").input_value() == "Second opinion"
    screenshot(page, "d05-no-patient-agreement")
    assert Share.objects.count() == 0 and Bucket.objects.count() == 0
    assert problems == []
