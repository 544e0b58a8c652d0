"""Send to my PACS survives its worker: leases, the relay, resuming, and a real
worker SIGKILLed mid-transfer (studies/dicomnet/leases.py, sharing/access/)."""

import datetime

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from sharing.access.pacs_relay import pacs_transfers_relay
from sharing.models import AuditEvent, PacsTransfer
from studies.dicomnet import leases
from studies.models import DicomDestination, Instance
from tests.dicom_faults import LEASE, dicom_task_world, slow_orthanc, wait_until
from tests.dicom_peers import running_orthanc
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    SeriesFactory,
    UserFactory,
    add_images,
    viewer_bucket,
)

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


@pytest.fixture
def orthanc(tmp_path):
    """The recipient department's PACS."""
    with running_orthanc(tmp_path / "pacs") as server:
        yield server


@pytest.fixture
def recipient():
    department = DepartmentFactory(name="Radiologie UZ Gent", code="uzgent")
    user = UserFactory(first_name="Pieter", last_name="Wouters")
    MembershipFactory(user=user, department=department)
    user.department = department
    return user


def _destination(department, pacs):
    return DicomDestination.objects.create(
        department=department, ae_title=pacs.aet, host="127.0.0.1", port=pacs.dicom_port
    )


def _transfer(bucket, user, pacs=None, **fields):
    return PacsTransfer.objects.create(
        bucket=bucket,
        user=user,
        ae_title=pacs.aet if pacs else "PACS",
        host="127.0.0.1",
        port=pacs.dicom_port if pacs else 104,
        **fields,
    )


def _ago(seconds):
    return timezone.now() - datetime.timedelta(seconds=seconds)


def _urls(bucket, transfer=None):
    ids = {"bucket_id": bucket.pk, "study_id": bucket.share.studies.get().pk}
    urls = {
        "page": reverse("sharing:received_study", kwargs=ids),
        "send": reverse("sharing:pacs_send", kwargs=ids),
    }
    if transfer is not None:
        urls["progress"] = reverse(
            "sharing:pacs_progress", kwargs={**ids, "transfer_id": transfer.pk}
        )
    return urls


def _bucket_uids(bucket):
    return set(
        Instance.objects.filter(
            series__study__in=bucket.share.studies.all()
        ).values_list("sop_instance_uid", flat=True)
    )


def _held(pacs):
    """Return {SOP Instance UID: SOP class} of what the PACS holds."""
    tags = [pacs.get(f"/instances/{i}/simplified-tags") for i in pacs.get("/instances")]
    return {t["SOPInstanceUID"]: t["SOPClassUID"] for t in tags}


@pytest.mark.django_db
def test_the_claim_is_conditional_and_fenced(recipient):
    bucket = viewer_bucket(recipient=recipient)
    transfer = _transfer(bucket, recipient)

    first = leases.claim(PacsTransfer, transfer.pk)
    assert first is not None and first.attempt == 1
    # Held: a second task (a redelivery, another worker) does nothing.
    assert leases.claim(PacsTransfer, transfer.pk) is None
    # Its worker died: past the lease, the next claim takes it over...
    PacsTransfer.objects.filter(pk=transfer.pk).update(leased_until=_ago(1))
    second = leases.claim(PacsTransfer, transfer.pk)
    assert second is not None and second.attempt == 2
    # ...and the first worker, were it only slow, stops at its next object.
    with pytest.raises(leases.LeaseLost):
        first.hold(sent=1)
    second.hold(sent=1)
    transfer.refresh_from_db()
    assert transfer.sent == 1 and transfer.leased_until > timezone.now()
    # A finished transfer is never claimed again.
    second.release(status=PacsTransfer.Status.DONE)
    PacsTransfer.objects.filter(pk=transfer.pk).update(leased_until=_ago(1))
    assert leases.claim(PacsTransfer, transfer.pk) is None


@pytest.mark.django_db
def test_the_page_says_interrupted_resuming_and_offers_to_resume(client, recipient):
    bucket = viewer_bucket(recipient=recipient)
    DicomDestination.objects.create(
        department=recipient.department, ae_title="PACS", host="127.0.0.1", port=104
    )
    transfer = _transfer(
        bucket,
        recipient,
        status=PacsTransfer.Status.SENDING,
        total=120,
        sent=45,
        attempts=1,
        leased_until=timezone.now() + datetime.timedelta(seconds=60),
    )
    client.force_login(recipient)
    url = _urls(bucket, transfer)["progress"]
    running = client.get(url).content.decode()
    assert "Sending to PACS: 45 of 120 items sent" in running
    assert "Resume now" not in running

    PacsTransfer.objects.filter(pk=transfer.pk).update(leased_until=_ago(1))
    stalled = client.get(url).content.decode()
    assert "Sending to PACS" not in stalled
    assert (
        "Interrupted after 45 of 120 items sent to PACS (PACSshare's worker "
        "stopped); resuming…"
    ) in stalled
    assert "Resume now" in stalled
    assert 'hx-trigger="every 2s"' in stalled

    # Re-queued by the relay, it says the same until a worker takes it.
    PacsTransfer.objects.filter(pk=transfer.pk).update(
        status=PacsTransfer.Status.PENDING,
        leased_until=timezone.now() + datetime.timedelta(seconds=60),
    )
    assert "resuming…" in client.get(url).content.decode()


@pytest.mark.dicom_peers
@pytest.mark.django_db
def test_the_relay_resumes_after_what_was_sent(recipient, orthanc):
    bucket = viewer_bucket(recipient=recipient)
    _destination(recipient.department, orthanc)
    # A worker died after the first two of four items (3 images, the message).
    transfer = _transfer(
        bucket,
        recipient,
        orthanc,
        status=PacsTransfer.Status.SENDING,
        total=4,
        sent=2,
        attempts=1,
        leased_until=_ago(1),
    )

    result = pacs_transfers_relay()  # in-process here: the task runs at once

    assert (result.requeued, result.given_up) == (1, 0)
    transfer.refresh_from_db()
    assert transfer.status == PacsTransfer.Status.DONE, transfer.error
    assert (transfer.total, transfer.sent, transfer.failed) == (4, 4, 0)
    assert (transfer.attempts, transfer.leased_until) == (2, None)
    # Only the last two went: the MR image and the message.
    held = _held(orthanc)
    assert len(held) == 2
    assert sorted(held.values())[-1] == BASIC_TEXT_SR
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SENT_TO_PACS).count() == 1


@pytest.mark.django_db
def test_the_relay_gives_up_after_the_last_attempt_and_a_new_try_starts(
    client, recipient, settings, django_capture_on_commit_callbacks
):
    settings.DICOM_TASK_MAX_ATTEMPTS = 3
    bucket = viewer_bucket(recipient=recipient)
    DicomDestination.objects.create(
        department=recipient.department, ae_title="PACS", host="127.0.0.1", port=104
    )
    transfer = _transfer(
        bucket,
        recipient,
        status=PacsTransfer.Status.SENDING,
        total=4,
        sent=1,
        attempts=3,
        leased_until=_ago(1),
    )
    # Still held by its broker: the relay leaves a waiting row alone.
    waiting = _transfer(
        viewer_bucket(recipient=recipient),
        recipient,
        leased_until=timezone.now() + datetime.timedelta(seconds=60),
    )

    call_command("relay_dicom_tasks")

    transfer.refresh_from_db()
    assert transfer.status == PacsTransfer.Status.FAILED
    assert "interrupted 3 times" in transfer.error
    assert "Send it again" in transfer.error
    assert transfer.finished_at is not None and transfer.leased_until is None
    event = AuditEvent.objects.get(action=AuditEvent.Action.SENT_TO_PACS)
    assert (event.details["status"], event.details["sent"]) == ("failed", 1)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts) == (PacsTransfer.Status.PENDING, 0)

    client.force_login(recipient)
    urls = _urls(bucket, transfer)
    fragment = client.get(urls["progress"]).content.decode()
    assert "Not sent to PACS." in fragment and "Send again" in fragment
    # "Send again" starts a new transfer at once (PACS port 104 is not there).
    with django_capture_on_commit_callbacks(execute=True):
        client.post(urls["send"])
    assert PacsTransfer.objects.filter(bucket=bucket).count() == 2


@pytest.mark.dicom_peers
@pytest.mark.django_db
def test_a_click_resumes_an_interrupted_transfer_at_once(
    client, recipient, orthanc, django_capture_on_commit_callbacks
):
    bucket = viewer_bucket(recipient=recipient)
    _destination(recipient.department, orthanc)
    transfer = _transfer(
        bucket,
        recipient,
        orthanc,
        status=PacsTransfer.Status.SENDING,
        total=4,
        sent=3,
        attempts=1,
        leased_until=_ago(1),
    )
    client.force_login(recipient)
    urls = _urls(bucket, transfer)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(urls["send"])

    # The same row, resumed: no second transfer, and only the message went.
    transfer.refresh_from_db()
    assert PacsTransfer.objects.count() == 1
    assert transfer.status == PacsTransfer.Status.DONE, transfer.error
    assert (transfer.sent, transfer.attempts) == (4, 2)
    assert list(_held(orthanc).values()) == [BASIC_TEXT_SR]
    page = client.get(urls["page"]).content.decode()
    assert "Sent: all 4 items are in ORTHANC." in page


@pytest.mark.dicom_peers
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_sigkilled_mid_transfer_is_resumed_by_the_next(
    client, recipient, tmp_path
):
    bucket = viewer_bucket(recipient=recipient)
    ct = bucket.share.studies.get().series.get(series_number=1)
    add_images(SeriesFactory(study=ct.study, series_number=3), "CT_small.dcm", count=20)
    expected = _bucket_uids(bucket)
    total = len(expected) + 1  # and the message
    with (
        slow_orthanc(tmp_path / "pacs", retrieve_delay=0) as pacs,
        dicom_task_world(tmp_path / "services") as world,
    ):
        _destination(recipient.department, pacs)
        client.force_login(recipient)
        assert client.post(_urls(bucket)["send"]).status_code == 302

        def sent(at_least):
            transfer = PacsTransfer.objects.get()
            return transfer if transfer.sent >= at_least else None

        assert wait_until(lambda: sent(6), timeout=40), world.worker.logs()
        world.worker.kill()
        killed = PacsTransfer.objects.get()
        assert killed.status == PacsTransfer.Status.SENDING
        assert 6 <= killed.sent < total, killed.sent

        # Past the lease it reads as interrupted, not as frozen progress.
        transfer = wait_until(
            lambda: PacsTransfer.objects.get().is_interrupted or None,
            timeout=LEASE + 2,
        )
        assert transfer
        progress = _urls(bucket, killed)["progress"]
        assert "resuming…" in client.get(progress).content.decode()

        world.worker.start()
        world.beat.start()
        done = wait_until(
            lambda: PacsTransfer.objects.filter(finished_at__isnull=False).first(),
            timeout=40,
        )
        assert done, world.worker.logs() + world.beat.logs()

        assert done.status == PacsTransfer.Status.DONE, done.error
        assert (done.total, done.sent, done.failed, done.attempts) == (
            total,
            total,
            0,
            2,
        )
        held = _held(pacs)
        assert {u for u, sop in held.items() if sop != BASIC_TEXT_SR} == expected
        assert list(held.values()).count(BASIC_TEXT_SR) == 1
        # What the first worker had sent was not sent again; at most the object
        # in flight when it died went twice.
        stored = pacs.stored()
        assert total <= len(stored) <= total + 1, (len(stored), killed.sent)
        assert (
            AuditEvent.objects.filter(action=AuditEvent.Action.SENT_TO_PACS).count()
            == 1
        )
        print(
            f"transfer killed at {killed.sent}/{total}; resumed by a new worker: "
            f"{len(stored)} C-STOREs for {total} objects"
        )
