"""Send to my PACS: a recipient sends a bucket's studies by C-STORE to a real
Orthanc named as their department's DICOM destination."""

import pytest
from django.urls import reverse

from sharing.models import AuditEvent, PacsTransfer, Pseudonym
from studies.deidentify import Deidentifier, deidentification_salt
from studies.models import DicomDestination, Instance
from tests.dicom_peers import running_orthanc
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    SeriesFactory,
    UserFactory,
    add_images,
    viewer_bucket,
)
from tests.fixtures_services import free_port, wait_for

pytestmark = [pytest.mark.dicom_peers]

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
# What the study, patient and files of viewer_bucket() carry (tests/factories.py).
IDENTIFYING = ["Peeters", "19700517", "ACC-5521", "AZ Sint-Jan Brugge", "Janssens"]


@pytest.fixture
def pacs(tmp_path):
    """The recipient department's PACS: an Orthanc that stores from any caller."""
    with running_orthanc(tmp_path / "pacs") as server:
        yield server


@pytest.fixture
def recipient():
    department = DepartmentFactory(name="Radiologie UZ Gent", code="uzgent")
    user = UserFactory(first_name="Pieter", last_name="Wouters")
    MembershipFactory(user=user, department=department)
    user.department = department
    return user


def _destination(department, pacs=None, *, port=None):
    return DicomDestination.objects.create(
        department=department,
        ae_title=pacs.aet if pacs else "NOBODY",
        host="127.0.0.1",
        port=port or pacs.dicom_port,
    )


def _urls(bucket):
    study = bucket.share.studies.get()
    ids = {"bucket_id": bucket.pk, "study_id": study.pk}
    return (
        reverse("sharing:received_study", kwargs=ids),
        reverse("sharing:pacs_send", kwargs=ids),
    )


def _send(client, bucket, capture):
    page, send = _urls(bucket)
    with capture(execute=True):
        response = client.post(send)
    assert response.status_code == 302
    return client.get(page)


def _bucket_uids(bucket):
    return set(
        Instance.objects.filter(
            series__study__in=bucket.share.studies.all()
        ).values_list("sop_instance_uid", flat=True)
    )


def _orthanc_sop_classes(pacs):
    return {
        pacs.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"]: pacs.get(
            f"/instances/{i}/simplified-tags"
        )["SOPClassUID"]
        for i in pacs.get("/instances")
    }


@pytest.mark.django_db
def test_it_sends_the_bucket_to_the_pacs(
    client, recipient, pacs, django_capture_on_commit_callbacks
):
    bucket = viewer_bucket(recipient=recipient)
    _destination(recipient.department, pacs)
    client.force_login(recipient)
    page, _send_url = _urls(bucket)
    before = client.get(page).content.decode()
    assert "Send to my PACS" in before and pacs.aet in before

    response = _send(client, bucket, django_capture_on_commit_callbacks)

    transfer = PacsTransfer.objects.get()
    assert transfer.status == PacsTransfer.Status.DONE, transfer.error
    # Three images and the sender's message (a Basic Text SR), as in the download.
    assert (transfer.total, transfer.sent, transfer.failed) == (4, 4, 0)
    assert transfer.finished_at is not None
    assert len(pacs.get("/instances")) == 4
    held = _orthanc_sop_classes(pacs)
    images = {uid for uid, sop in held.items() if sop != BASIC_TEXT_SR}
    assert images == _bucket_uids(bucket)
    assert list(held.values()).count(BASIC_TEXT_SR) == 1
    assert "Sent: all 4 items are in ORTHANC." in response.content.decode()
    event = AuditEvent.objects.get(action=AuditEvent.Action.SENT_TO_PACS)
    assert event.actor == recipient
    assert event.bucket_id == bucket.pk
    assert event.details["destination"] == f"ORTHANC@127.0.0.1:{pacs.dicom_port}"
    assert (event.details["sent"], event.details["failed"]) == (4, 0)


@pytest.mark.django_db
def test_an_anonymized_bucket_arrives_de_identified(
    client, recipient, pacs, django_capture_on_commit_callbacks
):
    bucket = viewer_bucket(recipient=recipient, anonymize=True)
    _destination(recipient.department, pacs)
    client.force_login(recipient)

    _send(client, bucket, django_capture_on_commit_callbacks)

    transfer = PacsTransfer.objects.get()
    assert transfer.status == PacsTransfer.Status.DONE, transfer.error
    study = bucket.share.studies.select_related("patient").get()
    pseudonym = Pseudonym.objects.get(bucket=bucket, patient=study.patient)
    deidentifier = Deidentifier(
        salt=deidentification_salt(f"bucket:{bucket.pk}"), pseudonym=pseudonym
    )
    expected = {deidentifier.uid(uid) for uid in _bucket_uids(bucket)}
    held = _orthanc_sop_classes(pacs)
    assert {u for u, sop in held.items() if sop != BASIC_TEXT_SR} == expected
    assert not expected & _bucket_uids(bucket)
    for orthanc_id in pacs.get("/instances"):
        tags = pacs.get(f"/instances/{orthanc_id}/simplified-tags")
        text = repr(tags)
        for value in [*IDENTIFYING, study.patient.patient_id]:
            assert value not in text, (value, orthanc_id)
        assert tags["PatientName"] == f"Anonymous^{pseudonym.given_name}"
        assert tags["PatientID"] == pseudonym.pseudo_patient_id
        assert tags["StudyInstanceUID"] == deidentifier.uid(study.study_instance_uid)
    event = AuditEvent.objects.get(action=AuditEvent.Action.SENT_TO_PACS)
    assert event.details["anonymized"] is True
    assert not any(v in repr(event.details) for v in IDENTIFYING)


@pytest.mark.django_db
def test_a_user_without_the_bucket_sends_nothing(
    client, recipient, pacs, django_capture_on_commit_callbacks
):
    bucket = viewer_bucket()
    _destination(recipient.department, pacs)
    client.force_login(recipient)
    page, send = _urls(bucket)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(send)
    assert response.status_code in (403, 404)
    assert not PacsTransfer.objects.exists()
    assert pacs.get("/instances") == []
    # Nor does another user read the bucket owner's transfer.
    owner = bucket.recipient_user
    transfer = PacsTransfer.objects.create(
        bucket=bucket, user=owner, ae_title="X", host="127.0.0.1", port=1
    )
    progress = reverse(
        "sharing:pacs_progress",
        kwargs={
            "bucket_id": bucket.pk,
            "study_id": bucket.share.studies.get().pk,
            "transfer_id": transfer.pk,
        },
    )
    assert client.get(progress).status_code in (403, 404)


@pytest.mark.django_db
def test_a_recipient_without_a_destination_sees_no_button(client, recipient):
    bucket = viewer_bucket(recipient=recipient)
    client.force_login(recipient)
    page, send = _urls(bucket)
    assert "Send to my PACS" not in client.get(page).content.decode()
    assert client.post(send).status_code == 404
    assert not PacsTransfer.objects.exists()


@pytest.mark.django_db
def test_the_destination_down_fails_the_transfer_with_a_reason(
    client, recipient, django_capture_on_commit_callbacks
):
    bucket = viewer_bucket(recipient=recipient)
    _destination(recipient.department, port=free_port())
    client.force_login(recipient)

    response = _send(client, bucket, django_capture_on_commit_callbacks)

    transfer = PacsTransfer.objects.get()
    assert transfer.status == PacsTransfer.Status.FAILED
    assert "cannot be reached" in transfer.error
    assert (transfer.sent, transfer.failed) == (0, 4)
    page = response.content.decode()
    assert "Not sent to NOBODY." in page
    assert "cannot be reached" in page
    assert "Send again" in page
    # Once, and no retry queued behind it.
    assert PacsTransfer.objects.count() == 1
    event = AuditEvent.objects.get(action=AuditEvent.Action.SENT_TO_PACS)
    assert event.details["status"] == "failed"


@pytest.mark.django_db
def test_the_progress_fragment_polls_until_the_end(client, recipient):
    bucket = viewer_bucket(recipient=recipient)
    DicomDestination.objects.create(
        department=recipient.department, ae_title="PACS", host="127.0.0.1", port=104
    )
    transfer = PacsTransfer.objects.create(
        bucket=bucket,
        user=recipient,
        ae_title="PACS",
        host="127.0.0.1",
        port=104,
        status=PacsTransfer.Status.SENDING,
        total=120,
        sent=45,
    )
    client.force_login(recipient)
    url = reverse(
        "sharing:pacs_progress",
        kwargs={
            "bucket_id": bucket.pk,
            "study_id": bucket.share.studies.get().pk,
            "transfer_id": transfer.pk,
        },
    )
    fragment = client.get(url).content.decode()
    assert "Sending to PACS: 45 of 120 items sent" in fragment
    assert 'hx-trigger="every 2s"' in fragment
    # While it runs, a second click sends nothing more.
    page, send = _urls(bucket)
    client.post(send)
    assert PacsTransfer.objects.count() == 1


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_bucket(client, recipient, pacs, celery_worker):
    """A Celery worker on Redis, not in-process, sends it."""
    bucket = viewer_bucket(recipient=recipient)
    _destination(recipient.department, pacs)
    client.force_login(recipient)
    page, send = _urls(bucket)
    assert client.post(send).status_code == 302

    def finished():
        transfer = PacsTransfer.objects.get()
        return transfer if transfer.finished_at else None

    transfer = wait_for(finished, timeout=60)
    assert transfer.status == PacsTransfer.Status.DONE, transfer.error
    assert transfer.sent == 4
    assert len(pacs.get("/instances")) == 4
    assert "Sent: all 4 items are in ORTHANC." in client.get(page).content.decode()


@pytest.mark.django_db
def test_a_compressed_image_travels_in_its_own_transfer_syntax(
    client, recipient, pacs, django_capture_on_commit_callbacks
):
    bucket = viewer_bucket(recipient=recipient)
    study = bucket.share.studies.get()
    nm = SeriesFactory(study=study, series_number=3, modality="NM")
    add_images(nm, "JPEG2000.dcm")
    _destination(recipient.department, pacs)
    client.force_login(recipient)

    _send(client, bucket, django_capture_on_commit_callbacks)

    transfer = PacsTransfer.objects.get()
    assert (transfer.status, transfer.sent) == (PacsTransfer.Status.DONE, 5)
    syntaxes = {
        pacs.get(f"/instances/{i}/simplified-tags")["Modality"]: pacs.get(
            f"/instances/{i}/metadata?expand"
        )["TransferSyntax"]
        for i in pacs.get("/instances")
    }
    assert syntaxes["NM"] == "1.2.840.10008.1.2.4.91"  # JPEG 2000, as stored
