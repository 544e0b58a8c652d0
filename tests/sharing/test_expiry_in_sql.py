"""The lists decide expiry in SQL (expired_q): the end of the valid-till day in
the sending department's zone, exactly as a bucket's own is_expired says, from
the zones a day ahead of UTC to those a day behind."""

import datetime

import pytest
from django.utils import timezone

from pacsshare.prepared import PreparedQuery
from sharing.models import Bucket
from sharing.status.selectors import expired_q, expiry_clock
from tests.factories import DepartmentFactory, UserFactory, make_bucket

pytestmark = pytest.mark.django_db

ZONES = ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Brussels", "UTC"]


def test_the_lists_and_the_guard_agree_on_expiry_in_every_zone():
    recipient = UserFactory()
    utc_today = timezone.now().astimezone(datetime.UTC).date()
    buckets = []
    for zone in ZONES:
        department = DepartmentFactory(time_zone=zone)
        for days in range(-3, 4):
            buckets.append(
                make_bucket(
                    recipient=recipient,
                    department=department,
                    valid_until=utc_today + datetime.timedelta(days=days),
                )
            )
    expected = {b.pk for b in buckets if b.is_expired}
    # Around any hour of the day some of these have ended, some not.
    assert expected and expected != {b.pk for b in buckets}

    listed = set(
        Bucket.objects.filter(pk__in=[b.pk for b in buckets])
        .filter(expired_q(**expiry_clock()))
        .values_list("pk", flat=True)
    )

    assert listed == expected


def test_a_query_compiled_once_holds_at_any_time():
    recipient = UserFactory()
    utc_today = timezone.now().astimezone(datetime.UTC).date()
    buckets = [
        make_bucket(
            recipient=recipient,
            department=DepartmentFactory(time_zone=zone),
            valid_until=utc_today + datetime.timedelta(days=days),
        )
        for zone in ZONES
        for days in range(-3, 4)
    ]
    prepared = PreparedQuery(
        lambda *, bucket_ids, now, utc_yesterday, utc_tomorrow: (
            Bucket.objects.filter(pk__in=bucket_ids)
            .filter(
                expired_q(
                    now=now, utc_yesterday=utc_yesterday, utc_tomorrow=utc_tomorrow
                )
            )
            .values_list("pk", flat=True)
        ),
        only_on={"postgresql"},
    )

    # Every three hours over three days: the zones' days turn at different hours.
    for hours in range(-36, 37, 3):
        now = timezone.now() + datetime.timedelta(hours=hours)
        listed = prepared.all(bucket_ids=[b.pk for b in buckets], **expiry_clock(now))
        assert set(listed) == {b.pk for b in buckets if now >= b.share.expires_at}, now
    assert len(prepared._statements) <= 1


def test_a_zone_added_at_the_same_instant_counts_too():
    # Off PostgreSQL expiry reads the departments' zones: one saved under the
    # same clock (a frozen one, a page's count and rows) is read too.
    recipient = UserFactory()
    clock = expiry_clock()
    yesterday = clock["now"].astimezone(datetime.UTC).date() - datetime.timedelta(2)

    def expired():
        return set(
            Bucket.objects.filter(expired_q(**clock)).values_list("pk", flat=True)
        )

    first = make_bucket(
        recipient=recipient,
        department=DepartmentFactory(time_zone="Europe/Brussels"),
        valid_until=yesterday,
    )
    assert expired() == {first.pk}
    second = make_bucket(
        recipient=recipient,
        department=DepartmentFactory(time_zone="Pacific/Kiritimati"),
        valid_until=yesterday,
    )

    assert expired() == {first.pk, second.pk}
