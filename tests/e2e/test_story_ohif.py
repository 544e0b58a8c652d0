"""Story: a recipient opens a shared CT in OHIF from the received study's page.

OHIF (npm @ohif/app, installed by `make ohif`) runs in Chromium on the bucket's
DICOMweb root, under its own Content Security Policy, and shows the CT.
"""

import io
import os

import pytest
from django.urls import reverse
from PIL import Image, ImageStat
from pydicom.uid import generate_uid

from studies.ohif import ohif_installed
from tests.e2e.browser import log_in
from tests.factories import instance_create, make_bucket, study_file_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SLICES = 6


@pytest.fixture(autouse=True)
def _needs_ohif():
    if not ohif_installed():
        if os.environ.get("PACSSHARE_REQUIRE_SERVICES"):
            pytest.fail("OHIF is not installed: run `make ohif`")
        pytest.skip("OHIF is not installed (make ohif)")


def ct_bucket(**kwargs):
    """Return a bucket whose study is a CT series of SLICES slices of CT_small."""
    bucket = make_bucket(require_otp=False, **kwargs)
    study = bucket.share.studies.get()
    series = study.series.get()
    series.modality, series.series_number = "CT", 1
    series.save()
    frame_of_reference = generate_uid()
    for number in range(1, SLICES + 1):
        z = f"{-75.7 + 5 * number:.1f}"
        data = study_file_bytes(
            "CT_small.dcm",
            study=study,
            series=series,
            InstanceNumber=number,
            ImagePositionPatient=["-158.135803", "-179.035797", z],
            SliceLocation=z,
            FrameOfReferenceUID=frame_of_reference,
        )
        instance_create(series=series, data=data, number=number)
    return bucket


def _watch(page):
    problems = []
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def _viewport_variance(page, path):
    viewport = page.locator(".cornerstone-viewport-element").first
    viewport.screenshot(path=str(path))
    image = Image.open(io.BytesIO(path.read_bytes())).convert("L")
    return ImageStat.Stat(image).stddev[0], image.size


def _open_in_ohif(live_server, page, bucket, tmp_path):
    """Open the bucket's study in OHIF from its page; return the viewport's
    deviation once drawn (a blank viewport stays near 0)."""
    study = bucket.share.studies.get()

    log_in(page, live_server.url, bucket.recipient_user.username)
    page.goto(
        live_server.url
        + reverse(
            "sharing:received_study",
            kwargs={"bucket_id": bucket.pk, "study_id": study.pk},
        )
    )
    page.click("#open-in-ohif")
    page.wait_for_url(f"**/received/{bucket.pk}/ohif/viewer**")
    page.wait_for_selector(".cornerstone-viewport-element canvas", timeout=90000)
    # The image is drawn once its frames arrived: wait until the viewport shows
    # more than a flat background.
    shot = tmp_path / "ohif-viewport.png"
    deviation = 0.0
    for _ in range(60):
        page.wait_for_timeout(1000)
        deviation, size = _viewport_variance(page, shot)
        if deviation > 10:
            break
    page.screenshot(path=str(tmp_path / "ohif-page.png"))
    # No first-visit tour (Shepherd) covers the image.
    assert page.locator(".shepherd-element").count() == 0
    return deviation, size


def test_it_opens_the_shared_ct_in_ohif(live_server, page, tmp_path):
    bucket = ct_bucket()
    problems = _watch(page)

    deviation, size = _open_in_ohif(live_server, page, bucket, tmp_path)
    print("screenshots:", tmp_path, "console:", problems)

    assert deviation > 10, f"the viewport looks blank ({deviation:.1f}, {size})"
    csp = [p for p in problems if "Content Security Policy" in p]
    assert csp == []


def test_an_anonymized_ct_shows_no_original_name_in_ohif(live_server, page, tmp_path):
    bucket = ct_bucket(anonymize=True)
    patient_id = bucket.share.studies.get().patient.patient_id
    problems = _watch(page)

    deviation, _size = _open_in_ohif(live_server, page, bucket, tmp_path)
    skip_tour = page.locator("text=Skip all")  # OHIF's first-visit tour
    if skip_tour.count():
        skip_tour.first.click()
    page.click("text=Patient")  # OHIF's patient information panel
    page.wait_for_timeout(500)
    page.screenshot(path=str(tmp_path / "ohif-patient.png"))
    text = page.inner_text("body")
    print("screenshots:", tmp_path, "console:", problems)

    assert deviation > 10
    assert "Peeters" not in text and patient_id not in text
    assert "Anonymous" in text


def test_ohif_is_refused_to_someone_who_cannot_open_the_bucket(live_server, page):
    bucket = ct_bucket()
    other = make_bucket(require_otp=False)

    log_in(page, live_server.url, other.recipient_user.username)
    response = page.goto(
        live_server.url
        + reverse(
            "sharing:ohif_route", kwargs={"bucket_id": bucket.pk, "route": "viewer"}
        )
    )
    config = page.request.get(
        live_server.url
        + reverse("sharing:ohif_config", kwargs={"bucket_id": bucket.pk})
    )

    assert response.status == 404
    assert config.status == 404
    assert "dicom-web" not in config.text()
