"""The overview's "Shared with me" tab."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from sharing.models import Bucket, BucketOpening, Label, Share
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    UserFactory,
    UserGroupFactory,
    make_bucket,
)

pytestmark = pytest.mark.django_db

URL = reverse("sharing:shared_with_me")


def rows(response):
    return re.findall(r"<tr class=\"[^\"]*\">.*?</tr>", response.content.decode(), re.S)


def test_it_lists_what_was_shared_with_the_user(client):
    user = UserFactory()
    bucket = make_bucket(recipient=user, require_otp=False, urgent=True)
    label = Label.objects.create(department=bucket.share.source_department, name="Onco")
    Share.objects.filter(pk=bucket.share_id).update(
        label=label, valid_until=datetime.date(2099, 12, 31)
    )
    client.force_login(user)

    response = client.get(URL)

    (row,) = rows(response)
    for text in (
        "Peeters",
        "CT thorax",
        "Dr. Anna Claes",
        "Radiologie AZ Sint-Jan",
        "31/12/2099",
        "Images and read access to the report",
        "Onco",
        "Urgent",
        "Message",
    ):
        assert text in row, text
    assert 'aria-current="page"' in response.content.decode()


def test_the_message_label_is_red_until_this_user_opens_the_study(client):
    user = UserFactory()
    bucket = make_bucket(recipient=user, require_otp=False)
    client.force_login(user)

    assert "badge-message-unread" in rows(client.get(URL))[0]
    client.get(
        reverse(
            "sharing:received_study",
            kwargs={"bucket_id": bucket.pk, "study_id": bucket.share.studies.get().pk},
        )
    )
    (row,) = rows(client.get(URL))

    assert "badge-message-read" in row and "badge-message-unread" not in row


def test_the_message_label_is_per_user_in_a_group(client):
    alice, bob = UserFactory(), UserFactory()
    group = UserGroupFactory()
    group.members.add(alice, bob)
    bucket = make_bucket(require_otp=False, bucket_kwargs={"recipient_group": group})
    BucketOpening.objects.create(bucket=bucket, user=alice)

    client.force_login(alice)
    assert "badge-message-read" in rows(client.get(URL))[0]
    client.force_login(bob)
    assert "badge-message-unread" in rows(client.get(URL))[0]


def test_no_message_no_label(client):
    user = UserFactory()
    make_bucket(recipient=user, require_otp=False, message="")
    client.force_login(user)

    (row,) = rows(client.get(URL))

    assert "badge-message" not in row


def test_expired_and_revoked_buckets_disappear_locked_ones_show_locked(client):
    user = UserFactory()
    make_bucket(recipient=user, require_otp=False, study_kwargs={"description": "OK"})
    make_bucket(
        recipient=user,
        valid_until=timezone.localdate() - datetime.timedelta(days=1),
        study_kwargs={"description": "EXPIRED"},
    )
    revoked = make_bucket(recipient=user, study_kwargs={"description": "REVOKED"})
    Bucket.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    share_revoked = make_bucket(recipient=user, study_kwargs={"description": "SHREV"})
    Share.objects.filter(pk=share_revoked.share_id).update(revoked_at=timezone.now())
    locked = make_bucket(recipient=user, study_kwargs={"description": "LOCKED"})
    Bucket.objects.filter(pk=locked.pk).update(locked_at=timezone.now())
    client.force_login(user)

    content = client.get(URL).content.decode()

    assert "EXPIRED" not in content
    assert "REVOKED" not in content and "SHREV" not in content
    (locked_row,) = [
        r for r in re.findall(r"<tr.*?</tr>", content, re.S) if "LOCKED" in r
    ]
    assert "is-locked" in locked_row and "badge-locked" in locked_row
    assert "2 studies shared with you" in content


def test_it_shows_group_and_department_buckets_but_not_others(client):
    user = UserFactory()
    group = UserGroupFactory()
    group.members.add(user)
    department = DepartmentFactory()
    MembershipFactory(user=user, department=department)
    make_bucket(
        bucket_kwargs={"recipient_group": group}, study_kwargs={"description": "G"}
    )
    make_bucket(
        bucket_kwargs={"recipient_department": department},
        study_kwargs={"description": "D"},
    )
    make_bucket(study_kwargs={"description": "SOMEONE ELSE"})
    client.force_login(user)

    content = client.get(URL).content.decode()

    assert len(rows(client.get(URL))) == 2
    assert "SOMEONE ELSE" not in content


def test_anonymized_rows_show_the_pseudonym(client):
    user = UserFactory()
    make_bucket(recipient=user, require_otp=False, anonymize=True)
    client.force_login(user)

    (row,) = rows(client.get(URL))

    assert "Anonymous" in row and "Peeters" not in row


def test_a_bucket_with_two_factor_shows_initials_until_the_code_is_entered(client):
    user = UserFactory()
    bucket = make_bucket(recipient=user, require_otp=True)
    client.force_login(user)

    (row,) = rows(client.get(URL))
    assert "J.P." in row and "Peeters" not in row and ", Jan" not in row

    session = client.session
    session["sharing.otp_verified_buckets"] = [str(bucket.pk)]
    session.save()
    (row,) = rows(client.get(URL))
    assert "Peeters" in row


def test_the_query_count_does_not_grow_with_the_rows(client):
    user = UserFactory()
    client.force_login(user)
    make_bucket(recipient=user)
    client.get(URL)  # warm up the session and content types
    with CaptureQueriesContext(connection) as one:
        client.get(URL)
    for index in range(5):
        make_bucket(recipient=user, anonymize=bool(index % 2), urgent=True)
    with CaptureQueriesContext(connection) as six:
        response = client.get(URL)

    assert len(rows(response)) == 6
    assert len(six) == len(one)


def test_an_empty_tab_says_so(client):
    client.force_login(UserFactory())

    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)

    assert "Nothing shared with you yet" in response.content.decode()
    # No row at all: nothing is counted after the page's own query.
    assert not [q for q in queries if "COUNT(*) FROM (" in q["sql"]]
