"""Reads of the recipient side: which buckets reach a user, and what they allow."""

from types import SimpleNamespace

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
    Window,
)
from django.utils.translation import gettext as _

from pacsshare.paginator import PreparedRows
from pacsshare.prepared import PreparedQuery, padded
from recipients.models import UserGroup, display_name_of
from studies.models import Study

from ..models import ACCESS_RANK, Access, Bucket, BucketOpening, Pseudonym, Share
from ..status.selectors import expired_q, expiry_clock


def recipient_q(user):
    """Return the filter of buckets sent to the user, their groups or departments."""
    return (
        Q(recipient_user=user)
        | Q(recipient_group__in=user.user_groups.all())
        | Q(recipient_department__in=user.departments.all())
    )


def buckets_with_share():
    """Return buckets with what every recipient page shows of them, in one query.

    Only the share, its department (expiry is a day in its zone) and its sender:
    a recipient's page never shows whom the bucket went to, and each join of a
    wide table costs PostgreSQL's planner more than the query runs. A label is
    read when the share has one.
    """
    return Bucket.objects.select_related(
        "share", "share__source_department", "share__sender"
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


def reaching_access_matters(bucket):
    """Return whether another of the user's buckets could give more report access
    than this one: not when it is anonymized or gives write access already."""
    rank = ACCESS_RANK[Access(bucket.share.access)]
    return not bucket.share.anonymize and rank < ACCESS_RANK[Access.IMAGES_WRITE]


def with_reaching_access(studies, *, user, bucket_id, open_ids, matters):
    """Annotate studies with `reaching_rank`: the broadest report access another
    of the user's buckets holding the study gives (rule 19), or None.

    Those count that are not revoked, not locked, not anonymized, and open
    (no SMS code asked, or its id in `open_ids`: codes entered this session).
    Expiry does not matter here: the bucket `bucket_id` itself is valid, so the
    others count (valid_buckets_reaching). report_rank reads this instead of
    querying. When no other bucket could change the rank (`matters` is
    reaching_access_matters of the bucket), nothing is asked and the rank is None.
    """
    if not matters:
        return studies.annotate(reaching_rank=Value(None, IntegerField()))
    rank = Case(
        *(
            When(share__access=access, then=Value(n))
            for access, n in ACCESS_RANK.items()
        ),
        output_field=IntegerField(),
    )
    others = (
        Bucket.objects.filter(
            recipient_q(user),
            share__studies=OuterRef("pk"),
            revoked_at__isnull=True,
            locked_at__isnull=True,
            share__revoked_at__isnull=True,
            share__anonymize=False,
        )
        .exclude(pk=bucket_id)
        .filter(Q(require_otp=False) | Q(pk__in=open_ids))
        .annotate(rank=rank)
        .order_by("-rank")
        .values("rank")[:1]
    )
    return studies.annotate(reaching_rank=Subquery(others))


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
    if hasattr(study, "reaching_rank"):  # with_reaching_access: no query
        return max(rank, study.reaching_rank or 0)
    for other in valid_buckets_reaching(user=user, study=study):
        if other.pk == bucket.pk or other.share.anonymize or not is_open(other):
            continue
        rank = max(rank, ACCESS_RANK[Access(other.share.access)])
    return rank


def buckets_valid_for(*, user):
    """Return the user's buckets that still show: not revoked, not expired.

    A bucket counts when it was sent to the user, to one of their groups or to one
    of their departments. Locked buckets stay (they show as locked). Expiry (the
    end of the valid-till day in the sending department's zone) is decided in
    SQL, so a page of them can be cut in the database.
    """
    if not user.is_authenticated:
        return Bucket.objects.none()
    # The ids themselves, not subqueries: PostgreSQL then reads the user's few
    # buckets through the three indexes instead of scanning every bucket.
    groups = list(user.user_groups.values_list("pk", flat=True))
    reaching = (
        Q(recipient_user=user)
        | Q(recipient_group__in=groups)
        | Q(recipient_department__in=user.department_ids)
    )
    return (
        Bucket.objects.filter(reaching)
        .filter(revoked_at__isnull=True, share__revoked_at__isnull=True)
        .exclude(expired_q(**expiry_clock()))
    )


def studies_received_by(*, user):
    """Return one row per study of each of the user's valid buckets, newest share
    first, as dicts of `bucket_id`, `study_id` and `rows_total` (how many rows
    there are), for CappedPaginator.get_page_counting_rows.

    Read from the share's study links joined to its buckets directly (the
    conditions of buckets_valid_for, in one filter so they hold for the same
    bucket): no subquery of bucket ids, no study columns but its date, so
    PostgreSQL plans and orders it cheaply; the page's studies and buckets are
    read after, by id (studies_of_rows, buckets_of_rows). Its statement is
    compiled once per number of the user's groups and departments.
    """
    if not user.is_authenticated:
        return Share.studies.through.objects.none().values("study_id")
    return PreparedRows(
        _RECEIVED_LINKS,
        user_id=user.pk,
        group_ids=padded(_GROUP_IDS.all(user_id=user.pk)),
        department_ids=padded(user.department_ids),
        **expiry_clock(),
    )


def _received_links(
    *, user_id, group_ids, department_ids, now, utc_yesterday, utc_tomorrow
):
    reaching = (
        Q(share__buckets__recipient_user=user_id)
        | Q(share__buckets__recipient_group__in=group_ids)
        | Q(share__buckets__recipient_department__in=department_ids)
    )
    return (
        Share.studies.through.objects.filter(
            reaching & Q(share__buckets__revoked_at__isnull=True),
            share__revoked_at__isnull=True,
        )
        .exclude(
            expired_q(now=now, utc_yesterday=utc_yesterday, utc_tomorrow=utc_tomorrow)
        )
        .annotate(bucket_id=F("share__buckets__id"), shared_at=F("share__created_at"))
        .order_by(
            "-shared_at",
            "-bucket_id",
            F("study__study_date").desc(nulls_last=True),
            "-study_id",
        )
        .values("bucket_id", "study_id")
        .annotate(rows_total=Window(Count("*")))
    )


# On PostgreSQL (elsewhere expiry reads the zones while building).
# Planned once per connection, too: PostgreSQL took longer to plan it (4.5 ms)
# than to run it (2.6 ms) on the bench.
_RECEIVED_LINKS = PreparedQuery(
    _received_links, only_on={"postgresql"}, server_side=True
)


# The ids of the user's groups (user.user_groups), compiled once.
_GROUP_IDS = PreparedQuery(
    lambda *, user_id: (
        UserGroup.objects.filter(members=user_id)
        .order_by()
        .values_list("pk", flat=True)
    )
)

# A page's rows are read by statements compiled once per number of rows
# (pacsshare.prepared): building them cost more than running them.
_ROW_STUDIES = PreparedQuery(
    lambda *, study_ids: (
        Study.objects.filter(pk__in=study_ids)
        .order_by()
        .values(
            "id",
            "study_date",
            "description",
            "modalities",
            "patient_id",
            "patient__patient_id",
            "patient__family_name",
            "patient__given_name",
            "patient__birth_date",
            "patient__sex",
        )
    )
)


def studies_of_rows(*, study_ids):
    """Return {id: study} of the studies a page of rows shows, with their
    patient: the columns a row shows, as plain objects (like buckets_of_rows)."""
    values = _ROW_STUDIES.all(study_ids=sorted(study_ids))
    return {
        row["id"]: SimpleNamespace(
            pk=row["id"],
            study_date=row["study_date"],
            description=row["description"],
            modalities=row["modalities"],
            patient=SimpleNamespace(
                pk=row["patient_id"],
                patient_id=row["patient__patient_id"],
                family_name=row["patient__family_name"],
                given_name=row["patient__given_name"],
                birth_date=row["patient__birth_date"],
                sex=row["patient__sex"],
            ),
        )
        for row in values
    }


ROW_BUCKET_VALUES = (
    "id",
    "require_otp",
    "locked_at",
    "share__created_at",
    "share__valid_until",
    "share__urgent",
    "share__message",
    "share__anonymize",
    "share__access",
    "share__label_id",
    "share__label__name",
    "share__source_department__name",
    "share__sender__username",
    "share__sender__title",
    "share__sender__first_name",
    "share__sender__last_name",
)


def buckets_of_rows(*, bucket_ids, user):
    """Return {id: bucket} of the buckets a page of rows shows: what a row needs
    of each bucket and its share (sender and department names, label, whether
    this user opened it, its pseudonyms), as plain objects.

    Values, not models: the page holds up to 50 buckets with four related rows
    each, and building those models cost more than the queries.
    """
    values = _ROW_BUCKETS.all(bucket_ids=sorted(bucket_ids), user_id=user.pk)
    by_id = {}
    for row in values:
        share = SimpleNamespace(
            created_at=row["share__created_at"],
            valid_until=row["share__valid_until"],
            urgent=row["share__urgent"],
            message=row["share__message"],
            anonymize=row["share__anonymize"],
            access=row["share__access"],
            label=(
                SimpleNamespace(name=row["share__label__name"])
                if row["share__label_id"] is not None
                else None
            ),
            sender=display_name_of(
                row["share__sender__title"],
                row["share__sender__first_name"],
                row["share__sender__last_name"],
                row["share__sender__username"],
            ),
            source_department=SimpleNamespace(
                name=row["share__source_department__name"]
            ),
        )
        by_id[row["id"]] = SimpleNamespace(
            pk=row["id"],
            require_otp=row["require_otp"],
            is_locked=row["locked_at"] is not None,
            opened=row["opened"],
            share=share,
            # patient_shown reads these instead of the bucket's manager.
            listed_pseudonyms=[],
        )
    for pseudonym in _ROW_PSEUDONYMS.all(bucket_ids=sorted(by_id)):
        by_id[pseudonym.bucket_id].listed_pseudonyms.append(pseudonym)
    return by_id


_ROW_BUCKETS = PreparedQuery(
    lambda *, bucket_ids, user_id: (
        Bucket.objects.filter(pk__in=bucket_ids)
        .annotate(
            opened=Exists(
                BucketOpening.objects.filter(bucket_id=OuterRef("pk"), user_id=user_id)
            )
        )
        .order_by()
        .values(*ROW_BUCKET_VALUES, "opened")
    )
)
_ROW_PSEUDONYMS = PreparedQuery(
    lambda *, bucket_ids: Pseudonym.objects.filter(bucket_id__in=bucket_ids)
)


def access_label(share):
    """Return what the recipient is told of their access to a share."""
    if share.anonymize:
        return _("Images only (anonymized: the report is not available)")
    return Access(share.access).label
