"""A prepared query gives what its queryset gives, for any values, compiled once."""

import datetime

import pytest
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pacsshare.prepared import PreparedQuery, Text
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


def _joined(*, since, before, word, words):
    return (
        User.objects.filter(date_joined__gte=since, date_joined__date__lt=before)
        .filter(Q(username__icontains=word) | Q(first_name=word))
        .filter(*(Q(last_name__istartswith=w) for w in words))
        .order_by("pk")
        .values_list("username", flat=True)
    )


@pytest.mark.postgres
def test_it_takes_times_days_and_typed_words_as_parameters():
    now = timezone.now()
    for username, first, last in [
        ("anne_50%", "Anne", "Peeters"),
        ("anne-x", "Jan", "Peeters"),
        ("luc", "anne", "Pe_ters"),
    ]:
        UserFactory(username=username, first_name=first, last_name=last)
    prepared = PreparedQuery(_joined)
    since, before = (
        now - datetime.timedelta(hours=1),
        timezone.localdate(now) + datetime.timedelta(1),
    )

    for word, words in [("anne", ["pe"]), ("50%", ["pe"]), ("e_", ["pe_"])]:
        with CaptureQueriesContext(connection) as queries:
            got = prepared.all(
                since=since,
                before=before,
                word=Text(word),
                words=[Text(w) for w in words],
            )
        expected = list(_joined(since=since, before=before, word=word, words=words))
        assert got == expected
        assert len(queries) == 1
    # Wildcards typed are matched as themselves.
    assert prepared.all(
        since=since, before=before, word=Text("50%"), words=[Text("p")]
    ) == ["anne_50%"]
    assert (
        prepared.all(
            since=now + datetime.timedelta(hours=1),
            before=before,
            word=Text("anne"),
            words=[],
        )
        == []
    )
    assert len(prepared._statements) == 2  # one word, then none


def test_off_postgresql_a_call_with_a_date_is_built_each_time():
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's backend passes dates as text; PostgreSQL keeps them")
    user = UserFactory(username="anne")
    prepared = PreparedQuery(_joined)
    today = timezone.localdate()

    got = prepared.all(
        since=user.date_joined,
        before=today + datetime.timedelta(1),
        word=Text("ann"),
        words=[],
    )

    assert got == ["anne"]
    assert prepared._statements == {}


@pytest.mark.postgres
def test_it_refuses_a_day_derived_from_a_value():
    prepared = PreparedQuery(
        lambda *, today: User.objects.filter(
            date_joined__date__lt=today - datetime.timedelta(days=1)
        )
    )

    with pytest.raises(ValueError, match="derived"):
        prepared.all(today=timezone.now().date())


@pytest.mark.postgres
def test_it_refuses_a_day_derived_from_a_value_after_a_hundred_ids():
    prepared = PreparedQuery(
        lambda *, ids, today: User.objects.filter(
            pk__in=ids, date_joined__date__lt=today - datetime.timedelta(days=1)
        )
    )

    with pytest.raises(ValueError, match="derived"):
        prepared.all(ids=list(range(1, 101)), today=timezone.now().date())


def test_it_refuses_a_word_it_was_not_given_as_it_is():
    prepared = PreparedQuery(
        lambda *, typed: User.objects.filter(username__in=typed.split())
    )

    with pytest.raises(ValueError, match="derived"):
        prepared.all(typed=Text("anne luc"))


def test_elsewhere_than_only_on_it_builds_each_call():
    built = []

    def build(*, user_id):
        built.append(user_id)
        return User.objects.filter(pk=user_id).values_list("pk", flat=True)

    user = UserFactory()
    prepared = PreparedQuery(build, only_on={"no such vendor"})

    assert prepared.all(user_id=user.pk) == [user.pk]
    assert prepared.all(user_id=user.pk) == [user.pk]
    assert built == [user.pk, user.pk]


def test_a_window_and_a_count_take_their_numbers_as_parameters():
    department = DepartmentFactory()
    for _ in range(5):
        MembershipFactory(user=UserFactory(), department=department)
    prepared = PreparedQuery(
        lambda *, department_id: (
            Membership.objects.filter(department_id=department_id)
            .order_by("-pk")
            .values_list("user_id", flat=True)
        )
    )
    everyone = list(prepared.build(department_id=department.pk))

    assert (
        prepared.all(department_id=department.pk, window=slice(0, 2)) == (everyone[:2])
    )
    assert (
        prepared.all(department_id=department.pk, window=slice(2, 4)) == (everyone[2:4])
    )
    assert prepared.count(department_id=department.pk, at_most=3) == 3
    assert prepared.count(department_id=department.pk, at_most=100) == 5
    assert len(prepared._statements) == 1


def test_an_empty_window_reads_nothing():
    prepared = PreparedQuery(
        lambda *, user_id: User.objects.filter(pk=user_id).values_list("pk", flat=True)
    )

    with CaptureQueriesContext(connection) as queries:
        assert prepared.all(user_id=1, window=slice(0, 0)) == []
    assert len(queries) == 0


def test_a_statement_postgresql_prepares_gives_the_same_rows():
    department = DepartmentFactory()
    for _ in range(3):
        MembershipFactory(user=UserFactory(), department=department)
    since = timezone.now() - datetime.timedelta(days=1)

    def build(*, department_id, since, word):
        return (
            User.objects.filter(
                memberships__department_id=department_id,
                date_joined__gte=since,
                is_active=True,
            )
            .filter(Q(username__icontains=word) | Q(username=word))
            .order_by("pk")
            .values_list("pk", flat=True)
        )

    prepared = PreparedQuery(build, server_side=True)
    expected = list(build(department_id=department.pk, since=since, word=""))

    for _ in range(2):  # prepared, then executed again
        got = prepared.all(department_id=department.pk, since=since, word=Text(""))
        assert got == expected
        assert (
            prepared.count(
                department_id=department.pk, since=since, word=Text(""), at_most=2
            )
            == 2
        )
        assert (
            prepared.all(
                department_id=department.pk,
                since=since,
                word=Text(""),
                window=slice(1, 3),
            )
            == expected[1:3]
        )


def test_past_its_shapes_a_query_is_built_per_call(monkeypatch):
    monkeypatch.setattr("pacsshare.prepared.MAX_SHAPES", 1)
    users = [UserFactory() for _ in range(3)]
    prepared = PreparedQuery(
        lambda *, user_ids: (
            User.objects.filter(pk__in=user_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    )

    assert prepared.all(user_ids=[users[0].pk]) == [users[0].pk]
    assert prepared.all(user_ids=[u.pk for u in users]) == [u.pk for u in users]
    assert len(prepared._statements) == 1
