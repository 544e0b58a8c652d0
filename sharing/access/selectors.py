"""Reads of the recipient side: which buckets reach a user, and what they allow."""

import datetime

from django.db.models import Prefetch, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from studies.models import Study

from ..models import ACCESS_RANK, Access, Bucket, BucketOpening


def recipient_q(user):
    """Return the filter of buckets sent to the user, their groups or departments."""
    return (
        Q(recipient_user=user)
        | Q(recipient_group__in=user.user_groups.all())
        | Q(recipient_department__in=user.departments.all())
    )


def buckets_with_share():
    """Return buckets with what every recipient page shows of them, in one query."""
    return Bucket.objects.select_related(
        "share",
        "share__source_department",
        "share__sender",
        "share__label",
        "recipient_user",
        "recipient_group",
        "recipient_department",
    )


def valid_buckets_reaching(*, user, study):
    """Return the user's buckets holding a study that count together (rule 19).

    Those not revoked and not locked count while any of them is still valid: the
    broadest access and the latest validity hold together, so write access
    until D2 and read access until a later D1 is write access until D1. None
    counts once all have expired.
    """
    buckets = (
        Bucket.objects.filter(recipient_q(user), share__studies=study)
        .filter(
            revoked_at__isnull=True,
            locked_at__isnull=True,
            share__revoked_at__isnull=True,
        )
        .select_related("share__source_department")
    )
    buckets = list(buckets)
    # Expiry is the end of a day in each department's own zone: decided in Python.
    if all(bucket.is_expired for bucket in buckets):
        return []
    return buckets


def report_rank(*, bucket, study, user, is_open):
    """Return the report access rank the user holds on a study through a bucket.

    Rule 19: the broadest access of the user's buckets holding the study counts
    (valid_buckets_reaching: an expired one still counts while this one is
    valid), those the caller can open (`is_open(bucket)`: its SMS code entered
    where one is asked). An anonymized bucket never opens the report, so it
    gives None itself and adds nothing to the others (rule 12).
    """
    if bucket.share.anonymize:
        return None
    rank = ACCESS_RANK[Access(bucket.share.access)]
    for other in valid_buckets_reaching(user=user, study=study):
        if other.pk == bucket.pk or other.share.anonymize or not is_open(other):
            continue
        rank = max(rank, ACCESS_RANK[Access(other.share.access)])
    return rank


def _maybe_expired_cutoff():
    """Return the earliest valid-till date that may still be open somewhere.

    The day ends at midnight in the department's zone; zones run from UTC-12 to
    UTC+14, so a valid-till before yesterday (UTC) is over everywhere. The rest
    is checked exactly in Python with Bucket.is_expired.
    """
    return timezone.now().date() - datetime.timedelta(days=1)


def buckets_received_by(*, user):
    """Return the user's buckets that still show: not revoked, not expired.

    A bucket counts when it was sent to the user, to one of their groups or to one
    of their departments. Locked buckets stay (they show as locked). Each bucket
    comes with its share, sender, department, label, studies and patients,
    pseudonyms, and this user's first opening, in a fixed number of queries.
    """
    if not user.is_authenticated:
        return []
    candidates = (
        buckets_with_share()
        .filter(recipient_q(user))
        .filter(revoked_at__isnull=True, share__revoked_at__isnull=True)
        .filter(
            Q(share__valid_until__isnull=True)
            | Q(share__valid_until__gte=_maybe_expired_cutoff())
        )
        .prefetch_related(
            Prefetch(
                "share__studies",
                queryset=Study.objects.select_related("patient").order_by(
                    "-study_date", "-id"
                ),
            ),
            "pseudonyms",
            Prefetch(
                "openings",
                queryset=BucketOpening.objects.filter(user=user),
                to_attr="openings_by_user",
            ),
        )
        .order_by("-share__created_at", "-id")
    )
    return [bucket for bucket in candidates if not bucket.is_expired]


def access_label(share):
    """Return what the recipient is told of their access to a share."""
    if share.anonymize:
        return _("Images only (anonymized: the report is not available)")
    return Access(share.access).label
