"""Story: an anonymized share shows the pseudonym everywhere, never the report,
and downloads de-identified files."""

import io
import zipfile

import pydicom
import pytest

from sharing.models import Bucket
from tests.e2e.browser import image_loaded, log_in, watch_console
from tests.e2e.conftest import screenshot
from tests.factories import build_story_world, share_through_service
from tests.fixtures_services import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

ORIGINAL = ("Peeters", "Jan Peeters", "J.P.")


def _assert_no_original_name(text):
    for value in ORIGINAL:
        assert value not in text, value


def test_it_shows_only_the_pseudonym(site, page):
    world = build_story_world()
    problems = watch_console(page)
    share_through_service(
        sender=world.sender,
        recipient=world.recipient,
        studies=[world.ct],
        anonymize=True,
        access="write",
        message="Anonymized for the teaching file.",
        recipient_options={"require_otp": False},
    )
    bucket = Bucket.objects.get()
    pseudonym = bucket.pseudonyms.get()
    patient_id = world.ct.patient.patient_id

    # The mail names no patient.
    mail = wait_for(lambda: site.smtp.messages and site.smtp.messages[0])
    _assert_no_original_name(mail.subject + mail.text + mail.html)

    log_in(page, site.url, "dr-recipient")
    page.goto(site.url + "/shared-with-me/")
    text = page.inner_text("main")
    assert "Anonymous" in text and pseudonym.given_name in text
    _assert_no_original_name(text)
    screenshot(page, "c01-shared-with-me-anonymized")

    page.click(".patient-link")
    page.wait_for_url(f"**/received/{bucket.pk}/studies/{world.ct.pk}/")
    assert image_loaded(page)
    text = page.inner_text("body")
    assert "Anonymous" in text and pseudonym.given_name in text
    _assert_no_original_name(text + page.title())
    assert patient_id not in text
    # No report, whatever the access level.
    assert page.locator("#viewer-report").count() == 0
    assert "Nodule" not in text
    screenshot(page, "c02-received-anonymized")
    response = page.goto(
        site.url + f"/received/{bucket.pk}/studies/{world.ct.pk}/report/"
    )
    assert response.status == 404
    page.go_back()

    # The download is de-identified.
    with page.expect_download() as info:
        page.click("a:has-text('Download (ZIP)')")
    path = info.value.path()
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.lower().endswith(".dcm")]
        assert len(names) >= 2
        for name in names:
            ds = pydicom.dcmread(io.BytesIO(archive.read(name)), force=True)
            _assert_no_original_name(str(ds.get("PatientName", "")))
            assert str(ds.get("PatientID", "")) != patient_id
            assert "19700517" not in str(ds.get("PatientBirthDate", ""))
            assert "Anonymous" in str(ds.get("PatientName", ""))
    assert problems == []
