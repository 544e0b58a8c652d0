"""The department's PACS as a DICOMweb source, against a real Orthanc (its
DICOMweb plugin): search by patient ID, name, accession and date, bring a
study in, the source down, and credentials that never show."""

import io
import logging

import pydicom
import pytest
import requests
from django.urls import reverse
from pydicom.uid import generate_uid

from studies.models import DicomWebImport, DicomWebSource, Instance, Study
from tests.dicom_peers import running_orthanc
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    UserFactory,
    shipped_file,
)
from tests.fixtures_services import free_port

pytestmark = [pytest.mark.dicom_peers, pytest.mark.django_db]

PASSWORD = "S3cret-pacs-pw!"
USERNAME = "pacsshare-reader"


def _file(name, **changes):
    ds = pydicom.dcmread(shipped_file(name))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def _pacs_files():
    """Return {label: [file bytes]}: a two-image CT, an MR, a JPEG 2000 NM."""
    ct_study = generate_uid()
    ct_series = generate_uid()
    ct = [
        _file(
            "CT_small.dcm",
            PatientName="Peeters^Jan",
            PatientID="PID-CT-1",
            AccessionNumber="ACC-CT-1",
            StudyInstanceUID=ct_study,
            SeriesInstanceUID=ct_series,
            SOPInstanceUID=generate_uid(),
            InstanceNumber=n,
        )
        for n in (1, 2)
    ]
    mr = [
        _file(
            "MR_small.dcm",
            PatientName="Janssens^Marie",
            PatientID="PID-MR-1",
            AccessionNumber="ACC-MR-1",
        )
    ]
    nm = [
        _file(
            "JPEG2000.dcm",
            PatientName="Peeters^Anna",
            PatientID="PID-NM-1",
            AccessionNumber="ACC-NM-1",
        )
    ]
    return {"ct": ct, "mr": mr, "nm": nm}


def _uids(files):
    return {str(pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID) for f in files}


def _study_uid(files):
    return str(pydicom.dcmread(io.BytesIO(files[0])).StudyInstanceUID)


@pytest.fixture
def pacs(tmp_path):
    """An Orthanc holding the PACS files, behind basic authentication."""
    config = {
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USERNAME: PASSWORD},
    }
    with running_orthanc(tmp_path / "pacs", config=config) as server:
        files = _pacs_files()
        for group in files.values():
            for data in group:
                requests.post(
                    f"{server.rest}/instances",
                    data=data,
                    auth=(USERNAME, PASSWORD),
                    timeout=30,
                ).raise_for_status()
        server.files = files
        yield server


@pytest.fixture
def clinician(pacs):
    department = DepartmentFactory(name="Radiologie AZ Delta", code="azdelta")
    DicomWebSource.objects.create(
        department=department,
        base_url=pacs.dicomweb,
        username=USERNAME,
        password=PASSWORD,
    )
    user = UserFactory(first_name="Eva", last_name="Maes")
    MembershipFactory(user=user, department=department)
    user.department = department
    return user


def _search(client, **criteria):
    response = client.get(reverse("studies:pacs_search"), criteria)
    assert response.status_code == 200
    return response


def _bring_in(client, capture, *, uid, department, follow=True):
    """POST "Bring in"; the task runs in-process once the request commits."""
    with capture(execute=True):
        response = client.post(
            reverse("studies:pacs_bring_in"),
            {"study_instance_uid": uid, "department": department.pk},
        )
    assert response.status_code == 302
    return client.get(response.url) if follow else response


def _rows(response):
    return [row["study"] for row in response.context["rows"]]


def test_it_finds_a_study_by_patient_id(client, clinician, pacs):
    client.force_login(clinician)
    response = _search(client, patient_id="PID-CT-1")
    studies = _rows(response)
    assert [s.study_instance_uid for s in studies] == [_study_uid(pacs.files["ct"])]
    assert studies[0].instance_count == 2
    page = response.content.decode()
    assert "Jan Peeters" in page
    assert "Bring in" in page


def test_it_finds_studies_by_the_start_of_a_name_in_any_case(client, clinician, pacs):
    client.force_login(clinician)
    studies = _rows(_search(client, patient_name="peet"))
    assert {s.patient_id for s in studies} == {"PID-CT-1", "PID-NM-1"}


def test_it_finds_a_study_by_accession_number(client, clinician, pacs):
    client.force_login(clinician)
    studies = _rows(_search(client, accession_number="ACC-MR-1"))
    assert [s.patient_id for s in studies] == ["PID-MR-1"]
    assert studies[0].modalities == ("MR",)


def test_it_finds_studies_by_date_range(client, clinician, pacs):
    client.force_login(clinician)
    studies = _rows(_search(client, date_from="2004-08-01", date_to="2004-08-31"))
    assert {s.patient_id for s in studies} == {"PID-MR-1", "PID-NM-1"}
    one_day = _rows(_search(client, date_from="2004-01-19", date_to="2004-01-19"))
    assert [s.patient_id for s in one_day] == ["PID-CT-1"]


def test_it_asks_for_a_criterion(client, clinician, pacs):
    client.force_login(clinician)
    response = _search(client, patient_id="")
    assert response.context["rows"] == []
    assert "Fill in at least one" in response.content.decode()


def test_it_brings_a_study_in_with_the_same_uids_and_counts(
    client, clinician, pacs, django_capture_on_commit_callbacks
):
    client.force_login(clinician)
    ct_uid = _study_uid(pacs.files["ct"])
    response = _bring_in(
        client,
        django_capture_on_commit_callbacks,
        uid=ct_uid,
        department=clinician.department,
    )
    row = DicomWebImport.objects.get()
    assert row.status == DicomWebImport.Status.DONE, (row.error, row.reasons)
    assert (row.total, row.imported, row.failed) == (2, 2, 0)
    page = response.content.decode()
    assert "2 images are in PACSshare." in page
    study = Study.objects.get(study_instance_uid=ct_uid)
    assert study.department == clinician.department
    assert row.study == study
    assert (study.series_count, study.instance_count) == (1, 2)
    stored = set(
        Instance.objects.filter(series__study=study).values_list(
            "sop_instance_uid", flat=True
        )
    )
    assert stored == _uids(pacs.files["ct"])
    assert study.patient.family_name == "Peeters"
    # On the overview, ready to share.
    overview = client.get(reverse("studies:overview")).content.decode()
    assert "Peeters" in overview
    assert f'value="{study.pk}"' in overview
    # Searched again, it is marked as already here.
    again = _search(client, patient_id="PID-CT-1")
    assert again.context["rows"][0]["local_id"] == study.pk
    assert "Already in PACSshare" in again.content.decode()


def test_it_keeps_a_compressed_study_as_the_pacs_holds_it(
    client, clinician, pacs, django_capture_on_commit_callbacks
):
    client.force_login(clinician)
    nm_uid = _study_uid(pacs.files["nm"])
    _bring_in(
        client,
        django_capture_on_commit_callbacks,
        uid=nm_uid,
        department=clinician.department,
    )
    instance = Instance.objects.get(series__study__study_instance_uid=nm_uid)
    with instance.file.open("rb") as handle:
        ds = pydicom.dcmread(handle)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.91"
    assert str(ds.SOPInstanceUID) in _uids(pacs.files["nm"])


def test_it_shows_progress_of_a_running_bring_in(client, clinician):
    client.force_login(clinician)
    row = DicomWebImport.objects.create(
        department=clinician.department,
        user=clinician,
        study_instance_uid="1.2.3",
        patient_name="Jan Peeters",
        status=DicomWebImport.Status.RUNNING,
        total=40,
        imported=12,
    )
    url = reverse("studies:pacs_import_progress", kwargs={"import_id": row.pk})
    fragment = client.get(url).content.decode()
    assert "12 of 40 images brought in" in fragment
    assert 'hx-trigger="every 2s"' in fragment
    row.status, row.imported = DicomWebImport.Status.DONE, 40
    row.save()
    fragment = client.get(url).content.decode()
    assert "hx-trigger" not in fragment


def test_only_members_of_the_sources_department_reach_it(client, clinician, pacs):
    other = UserFactory()
    MembershipFactory(user=other, department=DepartmentFactory())
    row = DicomWebImport.objects.create(
        department=clinician.department, user=clinician, study_instance_uid="1.2.3"
    )
    client.force_login(other)
    assert client.get(reverse("studies:pacs_search")).status_code == 404
    response = client.post(
        reverse("studies:pacs_bring_in"),
        {
            "study_instance_uid": _study_uid(pacs.files["ct"]),
            "department": clinician.department.pk,
        },
    )
    assert response.status_code == 404
    assert DicomWebImport.objects.count() == 1
    for name in ("studies:pacs_import", "studies:pacs_import_progress"):
        assert (
            client.get(reverse(name, kwargs={"import_id": row.pk})).status_code == 404
        )
    assert (
        "Search the PACS"
        not in client.get(reverse("studies:overview")).content.decode()
    )
    client.force_login(clinician)
    assert "Search the PACS" in client.get(reverse("studies:overview")).content.decode()


def test_a_wrong_password_is_said_without_showing_it(client, clinician, pacs, caplog):
    DicomWebSource.objects.update(password="wrong-" + PASSWORD)
    client.force_login(clinician)
    with caplog.at_level(logging.DEBUG):
        response = _search(client, patient_id="PID-CT-1")
    page = response.content.decode()
    assert "refused PACSshare&#x27;s credentials" in page
    assert PASSWORD not in page and PASSWORD not in caplog.text


def test_the_source_down_is_a_clear_message_not_a_500(
    client, clinician, caplog, django_capture_on_commit_callbacks
):
    DicomWebSource.objects.update(base_url=f"http://127.0.0.1:{free_port()}/dicom-web")
    client.force_login(clinician)
    with caplog.at_level(logging.DEBUG):
        response = _search(client, patient_id="PID-CT-1")
        bring_in = _bring_in(
            client,
            django_capture_on_commit_callbacks,
            uid="1.2.3.4",
            department=clinician.department,
        )
    page = response.content.decode()
    assert "The PACS could not be searched." in page
    assert "cannot be reached" in page
    row = DicomWebImport.objects.get()
    assert row.status == DicomWebImport.Status.FAILED
    assert "cannot be reached" in row.error
    assert "The study could not be brought in." in bring_in.content.decode()
    for text in (page, bring_in.content.decode(), caplog.text):
        assert PASSWORD not in text
        assert USERNAME not in text
        assert "PID-CT-1" not in caplog.text


def test_credentials_never_reach_the_page_or_the_log(
    client, clinician, pacs, caplog, django_capture_on_commit_callbacks
):
    client.force_login(clinician)
    with caplog.at_level(logging.DEBUG):
        search = _search(client, patient_id="PID-MR-1")
        bring_in = _bring_in(
            client,
            django_capture_on_commit_callbacks,
            uid=_study_uid(pacs.files["mr"]),
            department=clinician.department,
        )
    assert DicomWebImport.objects.get().status == DicomWebImport.Status.DONE
    for text in (search.content.decode(), bring_in.content.decode(), caplog.text):
        assert PASSWORD not in text
        assert USERNAME not in text
