"""What the sending side does to its buckets: unlock, revoke, retry a message.

Status Forwarding and the Django admin actions call these; who may do what is
decided by sharing.status.guard, which these check again.
"""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ..audit.record import audit_record
from ..models import AuditEvent, Bucket, BucketUnlock, Notification
from ..outbox.queue import broker_lease, notification_enqueue
from .guard import SenderAction, sender_may


class BucketNotLocked(Exception):
    """The bucket is not locked, so there is nothing to unlock."""


class BucketAlreadyRevoked(Exception):
    """The bucket was revoked before."""


def _locked_bucket_row(bucket):
    return (
        Bucket.objects.select_for_update()
        .select_related("share__source_department")
        .get(pk=bucket.pk)
    )


def bucket_unlock(*, bucket, by, request=None):
    """Unlock a locked bucket: reset its failed-code count, record who and when.

    Raises PermissionDenied when `by` may not administer the bucket and
    BucketNotLocked when it is not locked. Returns the BucketUnlock.
    """
    if not sender_may(user=by, bucket=bucket, action=SenderAction.UNLOCK):
        raise PermissionDenied(_("You may not unlock this bucket."))
    with transaction.atomic():
        row = _locked_bucket_row(bucket)
        if row.locked_at is None:
            raise BucketNotLocked(_("This bucket is not locked."))
        failed = row.failed_otp_attempts
        row.failed_otp_attempts = 0
        row.locked_at = None
        row.save(update_fields=["failed_otp_attempts", "locked_at"])
        unlock = BucketUnlock.objects.create(
            bucket=row, unlocked_by=by, failed_attempts=failed
        )
        audit_record(
            action=AuditEvent.Action.BUCKET_UNLOCKED,
            actor=by,
            request=request,
            bucket=row,
            studies=row.share.studies.all(),
            details={"failed_attempts": failed},
        )
    bucket.failed_otp_attempts = 0
    bucket.locked_at = None
    return unlock


def bucket_revoke(*, bucket, by, request=None):
    """Revoke a bucket: its recipient is refused from the very next request on.

    Raises PermissionDenied when `by` may not revoke it and BucketAlreadyRevoked
    when it was revoked before. Returns the bucket.
    """
    if not sender_may(user=by, bucket=bucket, action=SenderAction.REVOKE):
        raise PermissionDenied(_("You may not revoke this bucket."))
    with transaction.atomic():
        row = _locked_bucket_row(bucket)
        if row.revoked_at is not None:
            raise BucketAlreadyRevoked(_("This bucket was already revoked."))
        row.revoked_at = timezone.now()
        row.revoked_by = by
        row.save(update_fields=["revoked_at", "revoked_by"])
        # A re-share never outlives what it was re-shared from (rule 13).
        reshared = Bucket.objects.filter(
            pk__in=_reshared_bucket_ids(row), revoked_at__isnull=True
        ).update(revoked_at=row.revoked_at, revoked_by=by)
        audit_record(
            action=AuditEvent.Action.REVOKED,
            actor=by,
            request=request,
            bucket=row,
            studies=row.share.studies.all(),
            details={"reshares_revoked": reshared} if reshared else None,
        )
    bucket.revoked_at = row.revoked_at
    bucket.revoked_by = by
    return bucket


def _reshared_bucket_ids(bucket):
    """Return the ids of every bucket re-shared from this one, at any depth."""
    found, frontier = set(), {bucket.pk}
    while frontier:
        frontier = set(
            Bucket.objects.filter(share__parent_bucket__in=frontier)
            .exclude(pk__in=found)
            .values_list("pk", flat=True)
        )
        found |= frontier
    return found


def notification_retry(*, notification):
    """Queue a failed or stalled notification again; return whether it was queued.

    Stalled: in "sending" past its lease (its worker died). The row goes back to
    pending only if it is still failed or stalled (a conditional update), and the
    task is queued after commit.
    """
    with transaction.atomic():
        updated = (
            Notification.objects.filter(pk=notification.pk)
            .filter(
                Q(status=Notification.Status.FAILED)
                | Q(status=Notification.Status.SENDING, leased_until__lt=timezone.now())
            )
            .update(
                status=Notification.Status.PENDING,
                leased_until=broker_lease(),
                error="",
            )
        )
        if not updated:
            return False
        notification_enqueue(notification)
    notification.status = Notification.Status.PENDING
    notification.error = ""
    return True
