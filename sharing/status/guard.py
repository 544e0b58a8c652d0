"""The sender side's one guard: which outgoing buckets a user may see and act on.

Status Forwarding's list, its unlock and revoke, the Django admin's bucket actions
and the unlock and revoke services all decide here. The admins of the sending
department see what it sent; a plain member sees only what they sent themselves;
department admins of the sender and the service desk unlock; they and the share's
sender revoke; the service desk sees and does everything.
"""

from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q
from django.http import Http404

from recipients.roles import (
    departments_administered_by,
    departments_administered_by_admin,
    is_service_desk,
)

__all__ = [
    "SenderAction",
    "departments_administered_by",
    "get_bucket_for_sender",
    "is_service_desk",
    "outgoing_buckets_of",
    "outgoing_buckets_visible_to",
    "sender_may",
]

from ..models import Bucket


class SenderAction(models.TextChoices):
    VIEW = "view"
    UNLOCK = "unlock"
    REVOKE = "revoke"


def outgoing_buckets_visible_to(*, user):
    """Return the buckets the user may see on Status Forwarding."""
    if not user.is_authenticated or not user.is_active:
        return Bucket.objects.none()
    return outgoing_buckets_of(user_id=user.pk, service_desk=user.is_service_desk)


def outgoing_buckets_of(*, user_id, service_desk):
    """Return the buckets an active user, known by id, may see on Status
    Forwarding: outgoing_buckets_visible_to's rule, for a prepared query."""
    buckets = Bucket.objects.all()
    if service_desk:
        return buckets
    # A plain member sees what they sent; an admin of the sending department
    # sees everything it sent (patient names included, so no wider).
    return buckets.filter(
        Q(
            share__source_department__in=departments_administered_by_admin(
                user_id=user_id
            )
        )
        | Q(share__sender=user_id)
    )


def sender_may(*, user, bucket, action, administered_ids=None):
    """Return whether the user may take `action` on a bucket they can see.

    `administered_ids`, the ids of departments_administered_by(user), saves a
    query per row where a page asks for many buckets.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    if action == SenderAction.VIEW or user.is_service_desk:
        return True
    if action == SenderAction.REVOKE and bucket.share.sender_id == user.pk:
        return True
    if administered_ids is None:
        administered_ids = departments_administered_by(user=user).values_list(
            "pk", flat=True
        )
    return bucket.share.source_department_id in set(administered_ids)


def get_bucket_for_sender(*, user, bucket_id, action=SenderAction.VIEW):
    """Return an outgoing bucket the user may see and take `action` on.

    Raises Http404 for a bucket the user may not see (or that does not exist) and
    PermissionDenied for one they see but may not act on.
    """
    bucket = (
        outgoing_buckets_visible_to(user=user)
        .select_related("share__source_department")
        .filter(pk=bucket_id)
        .first()
    )
    if bucket is None:
        raise Http404("No such bucket")
    if not sender_may(user=user, bucket=bucket, action=action):
        raise PermissionDenied
    return bucket
