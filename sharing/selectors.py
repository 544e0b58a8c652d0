"""Reads about shares and buckets that several views need."""

import datetime
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from studies.models import Study
from studies.selectors import studies_visible_to

from .models import ACCESS_RANK, Access, Bucket


@dataclass(frozen=True)
class EffectiveAccess:
    """What a user holds on one study over all their valid buckets (rule 19)."""

    access: str
    valid_until: datetime.date | None  # None: unlimited
    expires_at: datetime.datetime | None
    anonymized: bool
    can_read_report: bool
    can_write_report: bool
    allow_further_sharing: bool
    buckets: tuple


def _reaching(user):
    return (
        Q(recipient_user=user)
        | Q(recipient_group__members=user)
        | Q(recipient_department__memberships__user=user)
    )


def buckets_reaching(*, user):
    """Return the buckets addressed to the user, one of their groups or departments."""
    if not user.is_authenticated:
        return Bucket.objects.none()
    ids = Bucket.objects.filter(_reaching(user)).values("pk")
    return Bucket.objects.filter(pk__in=ids)


def valid_buckets_reaching(*, user, study=None):
    """Return the usable buckets reaching the user: not revoked, locked or expired."""
    buckets = buckets_reaching(user=user).filter(
        revoked_at__isnull=True, locked_at__isnull=True, share__revoked_at__isnull=True
    )
    if study is not None:
        buckets = buckets.filter(share__studies=study)
    buckets = buckets.select_related("share__source_department")
    # Expiry is the end of a day in each department's own zone: decided in Python.
    return [bucket for bucket in buckets if not bucket.is_expired]


def effective_access_for_user(*, user, study) -> EffectiveAccess | None:
    """Return the broadest access and latest validity the user holds on a study.

    Rule 19: a study shared more than once with the same user gives the broadest
    access and the latest validity of all their valid buckets. An anonymized
    bucket never opens the report, so report rights come from the others only.
    """
    buckets = valid_buckets_reaching(user=user, study=study)
    if not buckets:
        return None
    shares = [bucket.share for bucket in buckets]
    access = max((s.access for s in shares), key=lambda a: ACCESS_RANK[Access(a)])
    unlimited = any(s.valid_until is None for s in shares)
    latest = None if unlimited else max(shares, key=lambda s: s.valid_until)
    report_ranks = [ACCESS_RANK[Access(s.access)] for s in shares if not s.anonymize]
    report_rank = max(report_ranks, default=0)
    return EffectiveAccess(
        access=access,
        valid_until=None if latest is None else latest.valid_until,
        expires_at=None if latest is None else latest.expires_at,
        anonymized=all(s.anonymize for s in shares),
        can_read_report=report_rank >= ACCESS_RANK[Access.IMAGES_READ],
        can_write_report=report_rank >= ACCESS_RANK[Access.IMAGES_WRITE],
        allow_further_sharing=any(s.allow_further_sharing for s in shares),
        buckets=tuple(buckets),
    )


def studies_shareable_by(*, user):
    """Return the studies a user may share: their departments' and those received
    in a valid bucket that allows further sharing (rule 1)."""
    if not user.is_authenticated:
        return Study.objects.none()
    received = [
        bucket.share_id
        for bucket in valid_buckets_reaching(user=user)
        if bucket.share.allow_further_sharing
    ]
    own = studies_visible_to(user=user).values("pk")
    return Study.objects.filter(Q(pk__in=own) | Q(shares__in=received)).distinct()


def bucket_for_reshare(*, user, bucket_id) -> Bucket:
    """Return a bucket the user may share on; refuse (404 unknown, 403 not allowed)."""
    bucket = (
        buckets_reaching(user=user)
        .select_related("share__source_department")
        .filter(pk=bucket_id)
        .first()
    )
    if bucket is None:
        raise Http404("No such bucket")
    if (
        not bucket.share.allow_further_sharing
        or bucket.is_revoked
        or bucket.is_locked
        or bucket.is_expired
    ):
        raise PermissionDenied("This bucket does not allow further sharing.")
    return bucket


def can_reshare(*, user, bucket) -> bool:
    """Tell whether the "Share" button belongs on a received study's page."""
    try:
        bucket_for_reshare(user=user, bucket_id=bucket.pk)
    except (Http404, PermissionDenied):
        return False
    return True
