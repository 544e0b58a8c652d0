"""Bring in survives its worker: leases, the relay, resuming, and a real worker
SIGKILLed mid-bring-in (studies/dicomnet/leases.py, relay.py, retrieve.py)."""

import datetime
import io

import pydicom
import pytest
from django.urls import reverse
from django.utils import timezone
from pydicom.uid import generate_uid

from studies.dicom_import import import_dicom_paths
from studies.dicomnet.relay import dicomweb_imports_relay
from studies.models import DicomWebImport, DicomWebSource, Instance
from tests.dicom_faults import LEASE, dicom_task_world, slow_orthanc, wait_until
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    UserFactory,
    shipped_file,
)


def _ct_files(count):
    study, series = generate_uid(), generate_uid()
    files = []
    for number in range(1, count + 1):
        ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
        ds.PatientName, ds.PatientID = "Peeters^Jan", "PID-LEASE-1"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        buffer = io.BytesIO()
        ds.save_as(buffer)
        files.append(buffer.getvalue())
    return study, files


@pytest.fixture
def clinician():
    department = DepartmentFactory(name="Radiologie AZ Delta", code="azdelta")
    user = UserFactory(first_name="Eva", last_name="Maes")
    MembershipFactory(user=user, department=department)
    user.department = department
    return user


def _pacs(tmp_path, clinician, count, **delays):
    """Start a slow Orthanc holding one CT study of ``count`` images."""
    server_cm = slow_orthanc(tmp_path / "pacs", store_delay=0, **delays)
    server = server_cm.__enter__()
    study, files = _ct_files(count)
    for data in files:
        server.post("/instances", data, "application/dicom")
    server.study_uid, server.files = study, files
    DicomWebSource.objects.create(
        department=clinician.department, base_url=server.dicomweb
    )
    return server_cm, server


@pytest.fixture
def pacs(tmp_path, clinician):
    server_cm, server = _pacs(tmp_path, clinician, 3, retrieve_delay=0)
    yield server
    server_cm.__exit__(None, None, None)


def _ago(seconds):
    return timezone.now() - datetime.timedelta(seconds=seconds)


def _local_uids(study_uid):
    return set(
        Instance.objects.filter(
            series__study__study_instance_uid=study_uid
        ).values_list("sop_instance_uid", flat=True)
    )


def _import_here(data, department, tmp_path):
    path = tmp_path / f"{generate_uid()}.dcm"
    path.write_bytes(data)
    import_dicom_paths(paths=[path], department=department)


def _row(clinician, study_uid, **fields):
    return DicomWebImport.objects.create(
        department=clinician.department,
        user=clinician,
        study_instance_uid=study_uid,
        **fields,
    )


@pytest.mark.dicom_peers
@pytest.mark.django_db
def test_the_relay_resumes_without_retrieving_what_is_in(clinician, pacs, tmp_path):
    # A worker died after bringing in one of the three images.
    _import_here(pacs.files[0], clinician.department, tmp_path)
    row = _row(
        clinician,
        pacs.study_uid,
        status=DicomWebImport.Status.RUNNING,
        total=3,
        imported=1,
        attempts=1,
        leased_until=_ago(1),
    )

    result = dicomweb_imports_relay()  # in-process here: the task runs at once

    assert (result.requeued, result.given_up) == (1, 0)
    row.refresh_from_db()
    assert row.status == DicomWebImport.Status.DONE, (row.error, row.reasons)
    assert (row.total, row.imported, row.already_present, row.failed) == (3, 3, 0, 0)
    assert (row.attempts, row.leased_until) == (2, None)
    assert row.study is not None
    assert _local_uids(pacs.study_uid) == {
        str(pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID) for f in pacs.files
    }
    assert len(pacs.retrieved()) == 2  # the one already in was not asked for


@pytest.mark.django_db
def test_the_relay_gives_up_after_the_last_attempt(client, clinician, settings):
    settings.DICOM_TASK_MAX_ATTEMPTS = 3
    DicomWebSource.objects.create(
        department=clinician.department, base_url="http://127.0.0.1:9/dicom-web"
    )
    row = _row(
        clinician,
        "1.2.3.4",
        status=DicomWebImport.Status.RUNNING,
        total=10,
        imported=4,
        attempts=3,
        leased_until=_ago(1),
    )
    held = _row(
        clinician,
        "1.2.3.5",
        status=DicomWebImport.Status.RUNNING,
        attempts=1,
        leased_until=timezone.now() + datetime.timedelta(seconds=60),
    )

    result = dicomweb_imports_relay()

    assert (result.requeued, result.given_up) == (0, 1)
    row.refresh_from_db()
    assert row.status == DicomWebImport.Status.FAILED
    assert "interrupted 3 times" in row.error
    assert row.finished_at is not None
    held.refresh_from_db()
    assert (held.status, held.attempts) == (DicomWebImport.Status.RUNNING, 1)
    client.force_login(clinician)
    url = reverse("studies:pacs_import_progress", kwargs={"import_id": row.pk})
    fragment = client.get(url).content.decode()
    assert "The study could not be brought in." in fragment
    assert "interrupted 3 times" in fragment
    assert "Try again" in fragment and "hx-trigger" not in fragment


@pytest.mark.dicom_peers
@pytest.mark.django_db
def test_the_page_says_interrupted_and_a_click_resumes_at_once(
    client, clinician, pacs, tmp_path, django_capture_on_commit_callbacks
):
    _import_here(pacs.files[0], clinician.department, tmp_path)
    row = _row(
        clinician,
        pacs.study_uid,
        status=DicomWebImport.Status.RUNNING,
        total=3,
        imported=1,
        attempts=1,
        leased_until=timezone.now() + datetime.timedelta(seconds=60),
    )
    client.force_login(clinician)
    url = reverse("studies:pacs_import_progress", kwargs={"import_id": row.pk})
    assert "1 of 3 images brought in" in client.get(url).content.decode()

    DicomWebImport.objects.filter(pk=row.pk).update(leased_until=_ago(1))
    fragment = client.get(url).content.decode()
    assert "1 of 3 images brought in" not in fragment
    assert (
        "Interrupted after 1 of 3 images (PACSshare's worker stopped); resuming…"
    ) in fragment
    assert "Resume now" in fragment and 'hx-trigger="every 2s"' in fragment

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("studies:pacs_bring_in"),
            {
                "study_instance_uid": pacs.study_uid,
                "department": clinician.department.pk,
            },
        )

    # The same row, resumed at once: no second bring-in.
    assert response.url == reverse("studies:pacs_import", kwargs={"import_id": row.pk})
    assert DicomWebImport.objects.count() == 1
    row.refresh_from_db()
    assert row.status == DicomWebImport.Status.DONE, (row.error, row.reasons)
    assert (row.imported, row.attempts) == (3, 2)
    assert len(pacs.retrieved()) == 2


@pytest.mark.dicom_peers
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_sigkilled_mid_bring_in_is_resumed_by_the_next(
    client, clinician, tmp_path
):
    count = 20
    server_cm, pacs = _pacs(tmp_path, clinician, count)
    try:
        with dicom_task_world(tmp_path / "services") as world:
            client.force_login(clinician)
            response = client.post(
                reverse("studies:pacs_bring_in"),
                {
                    "study_instance_uid": pacs.study_uid,
                    "department": clinician.department.pk,
                },
            )
            assert response.status_code == 302

            def handled(at_least):
                row = DicomWebImport.objects.get()
                return row if row.handled >= at_least else None

            assert wait_until(lambda: handled(5), timeout=40), world.worker.logs()
            world.worker.kill()
            killed = DicomWebImport.objects.get()
            assert killed.status == DicomWebImport.Status.RUNNING
            assert 5 <= killed.handled < count, killed.handled

            # Past the lease it reads as interrupted, not as frozen progress.
            assert wait_until(
                lambda: DicomWebImport.objects.get().is_interrupted or None,
                timeout=LEASE + 2,
            )
            page = client.get(
                reverse("studies:pacs_import_progress", kwargs={"import_id": killed.pk})
            ).content.decode()
            assert "resuming…" in page

            world.worker.start()
            world.beat.start()
            done = wait_until(
                lambda: DicomWebImport.objects.filter(
                    finished_at__isnull=False
                ).first(),
                timeout=40,
            )
            assert done, world.worker.logs() + world.beat.logs()
    finally:
        server_cm.__exit__(None, None, None)

    assert done.status == DicomWebImport.Status.DONE, (done.error, done.reasons)
    assert (done.total, done.imported, done.already_present, done.failed) == (
        count,
        count,
        0,
        0,
    )
    assert done.attempts == 2
    assert done.study is not None and done.study.instance_count == count
    assert _local_uids(pacs.study_uid) == {
        str(pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID) for f in pacs.files
    }
    # What the first worker had brought in was not retrieved again; at most the
    # image in flight when it died was.
    retrieved = pacs.retrieved()
    assert count <= len(retrieved) <= count + 1, (len(retrieved), killed.handled)
    print(
        f"bring-in killed at {killed.handled}/{count}; resumed by a new worker: "
        f"{len(retrieved)} retrievals for {count} images"
    )
