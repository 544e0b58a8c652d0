"""Stories: a clinician searches the department's PACS (an Orthanc, over
DICOMweb) and brings a study in; a recipient sends a share to their PACS (another
Orthanc, over C-STORE) and watches it go. A real Celery worker does the work."""

import io

import pydicom
import pytest
from playwright.sync_api import expect
from pydicom.uid import generate_uid

from sharing.models import PacsTransfer
from studies.models import DicomDestination, DicomWebSource, Study
from tests.dicom_peers import running_orthanc
from tests.e2e.browser import log_in, watch_console
from tests.e2e.conftest import screenshot
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    UserFactory,
    shipped_file,
    viewer_bucket,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.dicom_peers,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def _pacs_file(name, **changes):
    ds = pydicom.dcmread(shipped_file(name))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def test_a_clinician_brings_a_study_in_from_the_pacs(site, page, tmp_path):
    study_uid, series_uid = generate_uid(), generate_uid()
    with running_orthanc(tmp_path / "pacs") as pacs:
        for number in range(1, 4):
            pacs.post(
                "/instances",
                _pacs_file(
                    "CT_small.dcm",
                    PatientName="Peeters^Jan",
                    PatientID="PID-4711",
                    AccessionNumber="ACC-2024-77",
                    StudyDescription="CT thorax",
                    StudyInstanceUID=study_uid,
                    SeriesInstanceUID=series_uid,
                    SOPInstanceUID=generate_uid(),
                    InstanceNumber=number,
                ),
                "application/dicom",
            )
        pacs.post(
            "/instances",
            _pacs_file("MR_small.dcm", PatientName="Peeters^Anna", PatientID="PID-88"),
            "application/dicom",
        )
        department = DepartmentFactory(name="Radiologie AZ Delta", code="azdelta")
        DicomWebSource.objects.create(department=department, base_url=pacs.dicomweb)
        MembershipFactory(department=department, user__username="dr-maes")
        problems = watch_console(page)

        log_in(page, site.url, "dr-maes")
        page.goto(site.url + "/overview/")
        page.click("nav.tabs a:has-text('Search the PACS')")
        page.fill("#id_patient_name", "peeters")
        page.click(".pacs-search-form button[type=submit]")
        rows = page.locator("table.pacs-results tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(1)).to_contain_text("Jan Peeters")
        expect(rows.nth(1)).to_contain_text("CT thorax")
        screenshot(page, "pacs-search")

        rows.nth(1).locator("button:has-text('Bring in')").click()
        page.wait_for_url("**/overview/pacs/imports/*/")
        expect(page.locator("#pacs-import-progress")).to_contain_text(
            "Done: the study's 3 images are in PACSshare.", timeout=60000
        )
        screenshot(page, "pacs-bring-in")
        page.click("a:has-text('Open the study')")
        expect(page.locator("h1")).to_contain_text("Peeters")
        study = Study.objects.get(study_instance_uid=study_uid)
        assert study.instance_count == 3
        assert problems == []


def test_a_recipient_sends_a_share_to_their_pacs(site, page, tmp_path):
    with running_orthanc(tmp_path / "pacs", aet="UZGENTPACS") as pacs:
        department = DepartmentFactory(name="Radiologie UZ Gent", code="uzgent")
        recipient = UserFactory(username="dr-wouters", last_name="Wouters")
        MembershipFactory(user=recipient, department=department)
        DicomDestination.objects.create(
            department=department,
            ae_title=pacs.aet,
            host="127.0.0.1",
            port=pacs.dicom_port,
        )
        bucket = viewer_bucket(recipient=recipient)
        study = bucket.share.studies.get()
        problems = watch_console(page)

        log_in(page, site.url, "dr-wouters")
        page.goto(f"{site.url}/received/{bucket.pk}/studies/{study.pk}/")
        panel = page.locator("#send-to-pacs")
        expect(panel).to_contain_text("UZGENTPACS")
        panel.locator("button:has-text('Send to my PACS')").click()
        expect(panel).to_contain_text(
            "Sent: all 4 items are in UZGENTPACS.", timeout=60000
        )
        screenshot(page, "send-to-pacs")
        assert len(pacs.get("/instances")) == 4
        # How a large share looks on its way (a transfer held at 45 of 120).
        PacsTransfer.objects.create(
            bucket=bucket,
            user=recipient,
            ae_title=pacs.aet,
            host="127.0.0.1",
            port=pacs.dicom_port,
            status=PacsTransfer.Status.SENDING,
            total=120,
            sent=45,
        )
        page.reload()
        expect(panel).to_contain_text("45 of 120 items sent")
        # htmx polls the fragment while it runs.
        with page.expect_response("**/send-to-pacs/*/"):
            pass
        screenshot(page, "send-to-pacs-progress")
        assert problems == []
