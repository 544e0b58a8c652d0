"""Story: an anonymized share leaves out what cannot be cleaned, and both sides
are told: the sender at step 3, the recipient on the received study."""

import io
import zipfile

import pydicom
import pytest
from django.urls import reverse
from playwright.sync_api import expect

from sharing.models import Bucket
from studies.models import Instance
from tests.e2e.browser import image_loaded, log_in, log_out, watch_console
from tests.e2e.conftest import screenshot
from tests.factories import SeriesFactory, instance_create, study_file_bytes
from tests.factories import build_story_world as build_world

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def _add_burned_in_capture(study):
    """A screen capture of the request form: its pixels show the patient's name."""
    series = SeriesFactory(
        study=study, modality="OT", series_number=5, description="Scanned request"
    )
    data = study_file_bytes(
        "CT_small.dcm",
        study=study,
        series=series,
        SOPClassUID=SECONDARY_CAPTURE,
        Modality="OT",
        BurnedInAnnotation="YES",
    )
    instance = instance_create(series=series, data=data, number=1)
    Instance.objects.filter(pk=instance.pk).update(burned_in_annotation="YES")
    return instance


def test_the_left_out_instance_is_announced_on_both_sides(site, page):
    world = build_world()
    left_out = _add_burned_in_capture(world.ct)
    problems = watch_console(page)

    # The sender, step 3: anonymizing would leave the capture out.
    log_in(page, site.url, "dr-sender")
    page.goto(site.url + "/")
    page.check(f"#select-study-{world.ct.pk}")
    page.click("#share-button")
    page.wait_for_url("**/share/wizard/*/studies/")
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/wizard/*/recipients/")
    row = page.locator("[data-row]").nth(0)
    row.locator(".recipient-query").fill("maes")
    row.locator(".recipient-results [data-key]", has_text="Lucas Maes").click()
    row.locator("input[name$='-require_otp']").uncheck()
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/wizard/*/parameters/")
    note = page.locator("#anonymize-left-out")
    expect(note).to_contain_text("1 instance will be left out")
    screenshot(page, "d01-wizard-anonymize-left-out")
    page.check("input[name='parameters-access'][value='read']")
    page.fill("[name='parameters-reason']", "Teaching file")
    page.check("[name='parameters-patient_agreed']")
    page.check("[name='parameters-anonymize']")
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/*/")
    bucket = Bucket.objects.get()
    assert bucket.share.anonymize
    page.goto(site.url + "/")
    log_out(page)

    # The recipient: told that some of the study was left out, never shown it.
    log_in(page, site.url, "dr-recipient")
    page.goto(site.url + f"/received/{bucket.pk}/studies/{world.ct.pk}/")
    assert image_loaded(page)
    expect(page.locator("#left-out")).to_contain_text(
        "1 instance of this study was left out"
    )
    assert "Scanned request" not in page.inner_text("main")
    screenshot(page, "d02-received-left-out")
    frame = page.request.get(
        site.url
        + reverse(
            "sharing:received_frame",
            kwargs={
                "bucket_id": bucket.pk,
                "study_id": world.ct.pk,
                "instance_id": left_out.pk,
                "frame": 0,
                "fmt": "png",
            },
        )
    )
    assert frame.status == 404

    with page.expect_download() as info:
        page.click("a:has-text('Download (ZIP)')")
    with zipfile.ZipFile(info.value.path()) as archive:
        classes = [
            str(pydicom.dcmread(io.BytesIO(archive.read(name))).SOPClassUID)
            for name in archive.namelist()
            if name.endswith(".dcm")
        ]
    assert len(classes) == 2 and SECONDARY_CAPTURE not in classes
    assert problems == []
