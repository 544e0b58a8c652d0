"""Send to my PACS: a recipient sends a bucket's studies to their department's
DICOM destination (C-STORE, studies/dicomnet/store_scu.py) in a Celery task.
This module is the request's side; pacs_send.py is the task's.

What travels is what the bucket's download holds, study by study: every
instance, and the sender's message as a Basic Text SR; for an anonymized
bucket de-identified with the bucket's own salt and pseudonym, exactly as its
download (sharing/access/viewer.py), the instances that cannot be cleaned left
out. The request only records a PacsTransfer and queues the task after commit;
a broker that refuses fails the transfer with a reason, never the page.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from pacsshare.prepared import PreparedQuery
from recipients.models import Membership
from studies.dicomnet import leases
from studies.models import DicomDestination

from ..audit.record import audit_record
from ..models import AuditEvent, Bucket, PacsTransfer
from .tasks import send_to_pacs

logger = logging.getLogger(__name__)

RUNNING = (PacsTransfer.Status.PENDING, PacsTransfer.Status.SENDING)
# Publishing waits this little for a broker that refuses: the caller is a request.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}


# Read on every received study page: compiled once (pacsshare.prepared).
_MEMBERSHIPS_WITH_DESTINATIONS = PreparedQuery(
    lambda *, user_id: (
        Membership.objects.filter(user_id=user_id)
        .select_related("department__dicom_destination")
        .order_by("department__name")
    )
)


def destination_for(*, user, bucket) -> DicomDestination | None:
    """Return the destination the user sends this bucket to, or None.

    The user must be a member of a department with a destination; the bucket's
    own recipient department comes first, then the others by name.
    """
    if not user.is_authenticated:
        return None
    # One query gives the user's departments (remembered on the user, as
    # department_ids does, for the rest of the page) and their destinations.
    memberships = _MEMBERSHIPS_WITH_DESTINATIONS.all(user_id=user.pk)
    if not hasattr(user, "_department_ids"):
        user._department_ids = [m.department_id for m in memberships]
    destinations = [
        m.department.dicom_destination
        for m in memberships
        if hasattr(m.department, "dicom_destination")
    ]
    for destination in destinations:
        if destination.department_id == bucket.recipient_department_id:
            return destination
    return destinations[0] if destinations else None


def latest_transfer(*, user, bucket) -> PacsTransfer | None:
    return PacsTransfer.objects.filter(bucket=bucket, user=user).first()


def pacs_panel(*, user, bucket) -> dict | None:
    """Return the received study page's "Send to my PACS" context, or None."""
    destination = destination_for(user=user, bucket=bucket)
    if destination is None:
        return None
    return {
        "destination": destination,
        "transfer": latest_transfer(user=user, bucket=bucket),
    }


def pacs_transfer_start(*, bucket: Bucket, user, destination) -> PacsTransfer:
    """Record a transfer of the bucket to the destination; send it after commit.

    A transfer of this user's for this bucket still waiting or sending is
    returned instead of starting a second one (a double click sends once); one
    that was interrupted (its worker died) is resumed now, or given up and
    replaced by a new one when out of attempts.
    """
    running = PacsTransfer.objects.filter(
        bucket=bucket, user=user, status__in=RUNNING
    ).first()
    if running is not None and not running.is_stalled:
        return running
    if running is not None:
        if running.attempts < leases.max_attempts():
            if leases.requeue(PacsTransfer, running.pk):
                transfer_id = running.pk
                transaction.on_commit(
                    lambda: pacs_transfer_publish(transfer_id=transfer_id)
                )
            running.refresh_from_db()  # resumed, by this click or another
            return running
        if not pacs_transfer_give_up(running):
            running.refresh_from_db()  # taken up meanwhile
            return running
    transfer = PacsTransfer.objects.create(
        bucket=bucket,
        user=user,
        ae_title=destination.ae_title,
        host=destination.host,
        port=destination.port,
        leased_until=leases.lease_until(),
    )
    transfer_id = transfer.pk
    transaction.on_commit(lambda: pacs_transfer_publish(transfer_id=transfer_id))
    return transfer


def _language(transfer):
    language = getattr(getattr(transfer, "user", None), "language", None)
    return language or translation.get_language()


def pacs_transfer_publish(*, transfer_id: int, fail: bool = True) -> bool:
    """Hand the transfer's task to the broker; a refusal fails the transfer only.

    The relay passes ``fail=False``: a refusal then leaves the row to its next sweep.
    """
    try:
        send_to_pacs.apply_async(
            args=[transfer_id], retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception as exc:  # noqa: BLE001 - any broker failure
        logger.warning(
            "PACS transfer %s not queued: the broker refused (%s)",
            transfer_id,
            type(exc).__name__,
        )
        if not fail:
            return False
        transfer = PacsTransfer.objects.filter(pk=transfer_id).first()
        with translation.override(_language(transfer)):
            error = _("PACSshare's task queue is unavailable. Try again later.")
        PacsTransfer.objects.filter(
            pk=transfer_id, status=PacsTransfer.Status.PENDING
        ).update(
            status=PacsTransfer.Status.FAILED,
            error=error,
            finished_at=timezone.now(),
            leased_until=None,
        )
        return False
    return True


def pacs_transfer_give_up(transfer: PacsTransfer) -> bool:
    """Fail a transfer interrupted too often, saying so and auditing it.

    Returns False if the transfer moved on meanwhile (nothing is changed).
    """
    with translation.override(_language(transfer)):
        error = _(
            "The transfer was interrupted %(count)d times (PACSshare's worker "
            "stopped) and was given up. Send it again: the PACS keeps one copy "
            "of an image sent twice."
        ) % {"count": transfer.attempts}
    given_up = PacsTransfer.objects.filter(
        leases.stalled(PacsTransfer), pk=transfer.pk, attempts=transfer.attempts
    ).update(
        status=PacsTransfer.Status.FAILED,
        error=error[:300],
        finished_at=timezone.now(),
        leased_until=None,
    )
    if not given_up:
        return False
    transfer.refresh_from_db()
    bucket = transfer.bucket
    audit_record(
        action=AuditEvent.Action.SENT_TO_PACS,
        actor=transfer.user,
        bucket=bucket,
        studies=list(bucket.share.studies.all()),
        details={
            "destination": f"{transfer.ae_title}@{transfer.host}:{transfer.port}",
            "status": transfer.status,
            "total": transfer.total,
            "sent": transfer.sent,
            "failed": transfer.failed,
            "anonymized": bucket.share.anonymize,
            "interrupted": transfer.attempts,
        },
    )
    return True
