"""Department administration: who may administer a bucket, unlock and revoke.

The Status Forwarding page, the Django admin actions and the recipient-access
code all call these, so the rules are written once.
"""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from recipients.models import Department, Membership

from .audit import audit_record
from .models import AuditEvent, Bucket, BucketUnlock, Notification


class BucketNotLocked(Exception):
    """The bucket is not locked, so there is nothing to unlock."""


class BucketAlreadyRevoked(Exception):
    """The bucket was revoked before."""


def is_service_desk(user):
    """Return whether the user is the service desk (anonymous users are not)."""
    return bool(user.is_authenticated and user.is_active and user.is_service_desk)


def departments_administered_by(*, user):
    """Return the departments whose outgoing shares the user administers."""
    if not user.is_authenticated or not user.is_active:
        return Department.objects.none()
    if user.is_service_desk:
        return Department.objects.all()
    return Department.objects.filter(
        memberships__user=user, memberships__is_admin=True
    ).distinct()


def is_department_admin(*, user, department_id):
    """Return whether the user is an admin of the department (by id)."""
    return Membership.objects.filter(
        user=user, department_id=department_id, is_admin=True
    ).exists()


def can_administer_bucket(*, user, bucket):
    """Return whether the user may unlock the bucket: service desk or a department
    admin of the bucket's sending department."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_service_desk:
        return True
    return is_department_admin(
        user=user, department_id=bucket.share.source_department_id
    )


def can_revoke_bucket(*, user, bucket):
    """Return whether the user may revoke the bucket: its administrators or the
    share's sender."""
    if not user.is_authenticated or not user.is_active:
        return False
    return bucket.share.sender_id == user.pk or can_administer_bucket(
        user=user, bucket=bucket
    )


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
    if not can_administer_bucket(user=by, bucket=bucket):
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
    if not can_revoke_bucket(user=by, bucket=bucket):
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
    """Queue a failed notification again; return whether it was queued.

    The row goes back to pending only if it is still failed (a conditional
    update), and the task is queued after commit.
    """
    from .tasks import send_notification

    with transaction.atomic():
        updated = Notification.objects.filter(
            pk=notification.pk, status=Notification.Status.FAILED
        ).update(status=Notification.Status.PENDING, error="")
        if not updated:
            return False
        notification_id = notification.pk
        transaction.on_commit(
            lambda: send_notification.delay(notification_id=notification_id)
        )
    notification.status = Notification.Status.PENDING
    notification.error = ""
    return True
