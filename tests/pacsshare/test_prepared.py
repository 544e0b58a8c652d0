"""A prepared query gives what its queryset gives, for any values, compiled once."""

import pytest
from django.db import connection
from django.db.models import Count, Exists, OuterRef
from django.test.utils import CaptureQueriesContext

from pacsshare.prepared import PreparedQuery
from recipients.models import Membership, User
from sharing.models import Bucket, BucketOpening
from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _buckets(*, user_id, bucket_ids):
    return (
        Bucket.objects.filter(pk__in=bucket_ids)
        .select_related("share__source_department", "share__sender")
        .annotate(
            opened=Exists(
                BucketOpening.objects.filter(bucket=OuterRef("pk"), user_id=user_id)
            )
        )
        .order_by("pk")
    )


def _fields(bucket):
    share = bucket.share
    return (
        bucket.pk,
        bucket.recipient_user_id,
        bucket.opened,
        share.pk,
        share.created_at,
        share.source_department.name,
        share.sender.username,
    )


def test_it_gives_the_models_the_queryset_gives_for_each_call_s_values():
    buckets = [BucketFactory() for _ in range(3)]
    reader = buckets[1].recipient_user
    BucketOpening.objects.create(bucket=buckets[1], user=reader)
    prepared = PreparedQuery(_buckets)

    for ids in ([buckets[0].pk, buckets[1].pk], [buckets[2].pk, buckets[1].pk]):
        got = prepared.all(user_id=reader.pk, bucket_ids=ids)
        expected = list(_buckets(user_id=reader.pk, bucket_ids=ids))
        assert [_fields(b) for b in got] == [_fields(b) for b in expected]
        assert all(b.share.sender.pk for b in got)

    with CaptureQueriesContext(connection) as queries:
        got = prepared.all(user_id=reader.pk, bucket_ids=[buckets[1].pk])
        assert got[0].opened is True
        assert got[0].share.source_department.time_zone  # no further query
    assert len(queries) == 1


def test_it_gives_values_and_flat_lists():
    department = DepartmentFactory()
    members = [UserFactory() for _ in range(2)]
    for user in members:
        MembershipFactory(user=user, department=department)
    counts = PreparedQuery(
        lambda *, department_id: (
            User.objects.filter(memberships__department_id=department_id)
            .order_by("pk")
            .annotate(n=Count("memberships"))
            .values("username", "n")
        )
    )
    ids = PreparedQuery(
        lambda *, user_id: Membership.objects.filter(user_id=user_id).values_list(
            "department_id", flat=True
        )
    )

    assert counts.all(department_id=department.pk) == [
        {"username": user.username, "n": 1} for user in members
    ]
    assert ids.all(user_id=members[0].pk) == [department.pk]
    assert ids.all(user_id=members[0].pk + 10_000) == []


def test_an_empty_list_of_ids_reads_nothing():
    prepared = PreparedQuery(_buckets)

    with CaptureQueriesContext(connection) as queries:
        assert prepared.all(user_id=1, bucket_ids=[]) == []
    assert len(queries) == 0


def test_it_refuses_a_value_put_into_the_sql_text():
    prepared = PreparedQuery(lambda *, n: User.objects.order_by("pk")[:-n])

    with pytest.raises(ValueError, match="SQL text"):
        prepared.all(n=3)
