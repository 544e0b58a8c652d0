"""Reads for Status Forwarding: a department's outgoing buckets and their status."""

import collections
import datetime
import zoneinfo

from django.db import connection, models
from django.db.models import (
    Case,
    DateField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pacsshare.paginator import PreparedRows
from pacsshare.prepared import PreparedQuery, Text, padded
from recipients.models import Department, User, UserGroup

from ..models import Bucket, BucketOpening, Notification, Share
from .guard import outgoing_buckets_of


class BucketStatus(models.TextChoices):
    """The one status shown for a bucket, the first that applies in this order."""

    REVOKED = "revoked", _("Revoked")
    EXPIRED = "expired", _("Expired")
    LOCKED = "locked", _("Locked")
    OPENED = "opened", _("Opened")
    NOT_OPENED = "not_opened", _("Not yet opened")


MAIL_STATUS_CHOICES = [
    ("mail_pending", _("Mail pending")),
    ("mail_stalled", _("Mail sending (stalled)")),
    ("mail_sent", _("Mail sent")),
    ("mail_failed", _("Mail failed")),
]


def departments_visible_to(*, user):
    """Return the departments whose outgoing shares the user may watch."""
    if user.is_service_desk:
        return Department.objects.all()
    return Department.objects.filter(memberships__user=user).distinct()


def expiry_clock(now=None):
    """Return the values expired_q takes at `now` (by default the current time).

    The time and the UTC days either side of it, given to expired_q rather than
    derived in it, so a prepared query (pacsshare.prepared) takes them as
    parameters: its statement then holds at any time.
    """
    now = now or timezone.now()
    utc_today = now.astimezone(datetime.UTC).date()
    day = datetime.timedelta(days=1)
    return {
        "now": now,
        "utc_yesterday": utc_today - day,
        "utc_tomorrow": utc_today + day,
    }


def expired_q(*, now, utc_yesterday, utc_tomorrow):
    """Return the filter of buckets whose share has expired at `now` (the values
    of expiry_clock(now))."""
    # A share expires at the end of its valid-till day in its department's zone.
    if connection.vendor == "postgresql":
        # The day it is now in each row's zone, computed by PostgreSQL (from
        # Django's clock): no query for the zones first. Every zone's day is
        # within one of UTC's, so only a share ending yesterday or today (UTC)
        # needs its zone's: the others cost PostgreSQL no time zone conversion.
        local_today = Func(
            Value(now),
            F("share__source_department__time_zone"),
            arg_joiner=" AT TIME ZONE ",
            template="(%(expressions)s)::date",
            output_field=DateField(),
        )
        return Q(share__valid_until__lt=utc_yesterday) | (
            Q(share__valid_until__lt=utc_tomorrow)
            & Q(share__valid_until__lt=local_today)
        )
    # Elsewhere each zone's day is computed here, from the zones read first (a
    # prepared query of this is kept on PostgreSQL only). order_by(): the
    # default ordering by name would make every row distinct.
    zones = Department.objects.order_by().values_list("time_zone", flat=True).distinct()
    q = Q(pk__in=[])
    for zone in zones:
        today = now.astimezone(zoneinfo.ZoneInfo(zone)).date()
        q |= Q(share__source_department__time_zone=zone, share__valid_until__lt=today)
    return q


def _revoked_q():
    return Q(revoked_at__isnull=False) | Q(share__revoked_at__isnull=False)


def _share_mail(status):
    return Notification.objects.filter(
        bucket=OuterRef("pk"), kind=Notification.Kind.SHARE, status=status
    )


STALLED = "stalled"


def _stalled_q(now):
    # Claimed by a worker that has not finished within its lease: it died, or lost
    # its database; the relay takes the row up again.
    return Q(status=Notification.Status.SENDING, leased_until__lt=now)


def notification_shown_status(now=None):
    """Return an expression: the row's status, or "stalled" for a lapsed claim."""
    return Case(
        When(_stalled_q(now or timezone.now()), then=Value(STALLED)),
        default=F("status"),
    )


PERSON_NAME_FIELDS = ("id", "username", "title", "first_name", "last_name")


def buckets_with_status_columns(bucket_ids, *, departments=None, now=None):
    """Return the buckets of a Status Forwarding page with what its table shows.

    A constant number of queries: the buckets with their share and status
    columns, then the people and departments they name, each by id (those of
    `departments`, {id: department} the page has read already, are not read
    again), and the studies. Joining the users and departments into the first
    query instead costs PostgreSQL's planner and executor more than the short
    queries.
    """
    now = now or timezone.now()
    buckets = _STATUS_BUCKETS.all(bucket_ids=padded(bucket_ids), now=now)
    shares = [bucket.share for bucket in buckets]
    # The studies of the page's shares in one plain query (`listed_studies`, by
    # date): prefetch_related's managers per share cost more than the rows.
    studies_of = collections.defaultdict(list)
    for link in _STATUS_LINKS.all(share_ids=padded({s.pk for s in shares})):
        studies_of[link.share_id].append(link.study)
    for share in shares:
        share.listed_studies = studies_of[share.pk]
    # Only what a row says of a person: their name.
    users = {
        user.pk: user
        for user in _STATUS_PEOPLE.all(
            user_ids=padded(
                {share.sender_id for share in shares}
                | {b.recipient_user_id for b in buckets if b.recipient_user_id}
                | {b.revoked_by_id for b in buckets if b.revoked_by_id}
            )
        )
    }
    departments = dict(departments or {})
    missing = {share.source_department_id for share in shares} | {
        b.recipient_department_id for b in buckets if b.recipient_department_id
    }
    missing -= set(departments)
    if missing:
        departments.update(Department.objects.in_bulk(missing))
    group_ids = {b.recipient_group_id for b in buckets if b.recipient_group_id}
    groups = UserGroup.objects.in_bulk(group_ids) if group_ids else {}
    # Into each foreign key's cache, as select_related does (assigning through
    # the descriptors checks each object again: 300 times a page).
    cache = _cache_setter
    for bucket in buckets:
        share = bucket.share
        cache(Share, "sender", share, users[share.sender_id])
        cache(
            Share, "source_department", share, departments[share.source_department_id]
        )
        cache(Bucket, "recipient_user", bucket, users.get(bucket.recipient_user_id))
        cache(Bucket, "recipient_group", bucket, groups.get(bucket.recipient_group_id))
        cache(
            Bucket,
            "recipient_department",
            bucket,
            departments.get(bucket.recipient_department_id),
        )
        cache(Bucket, "revoked_by", bucket, users.get(bucket.revoked_by_id))
    return buckets


def _status_buckets(*, bucket_ids, now):
    latest_mail = Notification.objects.filter(
        bucket=OuterRef("pk"), kind=Notification.Kind.SHARE
    ).order_by("-created_at", "-id")
    first_opening = BucketOpening.objects.filter(bucket=OuterRef("pk")).order_by(
        "first_opened_at"
    )
    return (
        Bucket.objects.filter(pk__in=bucket_ids)
        .select_related("share")
        .annotate(
            mail_status=Subquery(
                latest_mail.annotate(shown=notification_shown_status(now)).values(
                    "shown"
                )[:1]
            ),
            first_opened_at=Subquery(first_opening.values("first_opened_at")[:1]),
        )
    )


# The queries of a page's rows, compiled once per number of rows (padded):
# building them cost more than running them (pacsshare.prepared). All of the
# page's statements are planned once per connection too (server_side): their
# generic plans use the indexes the custom ones use (EXPLAIN EXECUTE on
# bench_pages), and a searched page took PostgreSQL 18 ms to plan.
_STATUS_BUCKETS = PreparedQuery(_status_buckets, server_side=True)
_STATUS_LINKS = PreparedQuery(
    lambda *, share_ids: (
        Share.studies.through.objects.filter(share_id__in=share_ids)
        .select_related("study__patient")
        .order_by("study__study_date", "pk")
    ),
    server_side=True,
)
_STATUS_PEOPLE = PreparedQuery(
    lambda *, user_ids: User.objects.only(*PERSON_NAME_FIELDS).filter(pk__in=user_ids),
    server_side=True,
)


def _cache_setter(model, name, instance, value):
    model._meta.get_field(name).set_cached_value(instance, value)


def buckets_filter(
    buckets,
    *,
    clock,
    status="",
    department_id=None,
    sender_words=(),
    shared_from=None,
    shared_to=None,
    search_words=(),
    viewer_id=None,
):
    """Narrow the buckets by the Status Forwarding filters, at `clock` (the
    values of expiry_clock).

    With `viewer_id` (a user who is not the service desk), a patient matches
    only where that user may see the patient: a re-sharer of anonymized data
    must not learn real names by searching them. `sender_words` and
    `search_words` match words of names. Each filter is a condition on the
    bucket's own row (EXISTS for the share's studies), so no DISTINCT over all
    the buckets is needed. Every value is handed to the ORM as it is, so a
    prepared query (status_page_ids) takes them as parameters.
    """
    now = clock["now"]
    expired = expired_q(**clock)
    if status == BucketStatus.REVOKED:
        buckets = buckets.filter(_revoked_q())
    elif status == BucketStatus.EXPIRED:
        buckets = buckets.filter(expired).exclude(_revoked_q())
    elif status == BucketStatus.LOCKED:
        buckets = buckets.filter(locked_at__isnull=False).exclude(
            _revoked_q() | expired
        )
    elif status in (BucketStatus.OPENED, BucketStatus.NOT_OPENED):
        opened = Exists(BucketOpening.objects.filter(bucket=OuterRef("pk")))
        buckets = buckets.exclude(
            _revoked_q() | expired | Q(locked_at__isnull=False)
        ).filter(opened if status == BucketStatus.OPENED else ~opened)
    elif status == "mail_pending":
        buckets = buckets.filter(
            Exists(_share_mail(Notification.Status.PENDING))
            | Exists(_share_mail(Notification.Status.SENDING).exclude(_stalled_q(now)))
        )
    elif status == "mail_stalled":
        buckets = buckets.filter(
            Exists(_share_mail(Notification.Status.SENDING).filter(_stalled_q(now)))
        )
    elif status == "mail_sent":
        buckets = buckets.filter(Exists(_share_mail(Notification.Status.SENT)))
    elif status == "mail_failed":
        buckets = buckets.filter(Exists(_share_mail(Notification.Status.FAILED)))
    if department_id is not None:
        buckets = buckets.filter(share__source_department_id=department_id)
    for word in sender_words:
        buckets = buckets.filter(
            Q(share__sender__first_name__icontains=word)
            | Q(share__sender__last_name__icontains=word)
            | Q(share__sender__username__icontains=word)
        )
    if shared_from is not None:
        buckets = buckets.filter(share__created_at__date__gte=shared_from)
    if shared_to is not None:
        buckets = buckets.filter(share__created_at__date__lte=shared_to)
    patient_visible = Q()
    if viewer_id is not None:
        patient_visible = Q(share__anonymize=False) | Q(
            share__source_department__in=Department.objects.filter(
                memberships__user=viewer_id
            )
        )
    for word in search_words:
        buckets = buckets.filter(
            Q(recipient_user__first_name__icontains=word)
            | Q(recipient_user__last_name__icontains=word)
            | Q(recipient_user__username__icontains=word)
            | Q(recipient_group__name__icontains=word)
            | Q(recipient_department__name__icontains=word)
            | (patient_visible & Exists(_studies_of_patient_matching(word)))
        )
    return buckets


def _visible_and_filtered(
    *, user_id, service_desk, now, utc_yesterday, utc_tomorrow, **filters
):
    clock = {"now": now, "utc_yesterday": utc_yesterday, "utc_tomorrow": utc_tomorrow}
    return buckets_filter(
        outgoing_buckets_of(user_id=user_id, service_desk=service_desk),
        clock=clock,
        viewer_id=None if service_desk else user_id,
        **filters,
    )


# Status Forwarding's ids, newest share first, and their count: compiled once
# per shape (which filters are set, how many words), on PostgreSQL (elsewhere
# expiry reads the zones while building).
def _page_ids(**values):
    return (
        _visible_and_filtered(**values)
        .order_by("-share__created_at", "-share_id", "pk")
        .values_list("pk", flat=True)
    )


_PAGE_IDS = PreparedQuery(_page_ids, only_on={"postgresql"}, server_side=True)
_PAGE_COUNTED = PreparedQuery(
    lambda **values: (
        _visible_and_filtered(**values).order_by().values_list("pk", flat=True)
    ),
    only_on={"postgresql"},
    server_side=True,
)


def status_page_ids(
    *,
    user,
    status="",
    department=None,
    sender="",
    shared_from=None,
    shared_to=None,
    search="",
    now=None,
):
    """Return the ids of the buckets the user sees on Status Forwarding with
    these filters (the form's) at `now`, newest share first, for CappedPaginator.

    The guard's rule (outgoing_buckets_visible_to) narrowed by buckets_filter,
    run by prepared statements on PostgreSQL: the words typed are parameters,
    never shapes. Elsewhere one queryset, counted and sliced by the paginator
    (its expiry reads the zones once).
    """
    if not user.is_authenticated or not user.is_active:
        return Bucket.objects.none().values_list("pk", flat=True)
    values = {
        "user_id": user.pk,
        "service_desk": user.is_service_desk,
        **expiry_clock(now),
        "status": status,
        "department_id": None if department is None else department.pk,
        "sender_words": [Text(word) for word in sender.split()],
        "shared_from": shared_from,
        "shared_to": shared_to,
        "search_words": [Text(word) for word in search.split()],
    }
    if connection.vendor != "postgresql":
        return _page_ids(**values)
    return PreparedRows(_PAGE_IDS, counted=_PAGE_COUNTED, **values)


def _studies_of_patient_matching(word):
    return Share.studies.through.objects.filter(
        Q(study__patient__family_name__icontains=word)
        | Q(study__patient__given_name__icontains=word)
        | Q(study__patient__patient_id__icontains=word),
        share_id=OuterRef("share_id"),
    )


def bucket_status(bucket, *, now=None):
    """Return the BucketStatus value of a bucket from buckets_with_status_columns."""
    if bucket.is_revoked:
        return BucketStatus.REVOKED
    expires_at = bucket.share.expires_at
    if expires_at is not None and (now or timezone.now()) >= expires_at:
        return BucketStatus.EXPIRED
    if bucket.is_locked:
        return BucketStatus.LOCKED
    if bucket.first_opened_at is not None:
        return BucketStatus.OPENED
    return BucketStatus.NOT_OPENED
