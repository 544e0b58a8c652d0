"""Every refusal says why, shows no study data, and is audited with IP and agent."""

import datetime
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing.models import AuditEvent, Bucket, Share
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    UserFactory,
    UserGroupFactory,
    make_bucket,
)

pytestmark = pytest.mark.django_db

STUDY_DATA = ("Peeters", "CT thorax", "left lower lobe", "Axial 1mm")


def open_study(client, bucket, **extra):
    study = bucket.share.studies.get()
    return client.get(
        reverse(
            "sharing:received_study",
            kwargs={"bucket_id": bucket.pk, "study_id": study.pk},
        ),
        HTTP_USER_AGENT="TestBrowser/1.0",
        REMOTE_ADDR="192.0.2.7",
        **extra,
    )


def assert_no_study_data(response):
    content = response.content.decode()
    for text in STUDY_DATA:
        assert text not in content, text


def refusal_event():
    return AuditEvent.objects.get(action="access_refused")


def test_the_recipient_sees_the_study(client):
    bucket = make_bucket(require_otp=False)
    client.force_login(bucket.recipient_user)

    response = open_study(client, bucket)

    assert response.status_code == 200
    assert "Peeters" in response.content.decode()


def test_an_expired_bucket_is_refused(client):
    bucket = make_bucket(
        require_otp=False, valid_until=timezone.localdate() - datetime.timedelta(days=1)
    )
    client.force_login(bucket.recipient_user)

    response = open_study(client, bucket)

    assert response.status_code == 403
    assert "This share has expired" in response.content.decode()
    assert_no_study_data(response)
    event = refusal_event()
    assert event.details["refusal"] == "expired"
    assert event.ip_address == "192.0.2.7"
    assert event.user_agent == "TestBrowser/1.0"
    assert event.actor == bucket.recipient_user


def test_access_lasts_until_the_end_of_the_valid_till_day_in_the_department_zone(
    client,
):
    department = DepartmentFactory(time_zone="Pacific/Kiritimati")  # UTC+14
    today_there = datetime.datetime.now(zoneinfo.ZoneInfo("Pacific/Kiritimati")).date()
    open_bucket = make_bucket(
        require_otp=False, department=department, valid_until=today_there
    )
    over_bucket = make_bucket(
        require_otp=False,
        department=department,
        valid_until=today_there - datetime.timedelta(days=1),
    )
    client.force_login(open_bucket.recipient_user)
    assert open_study(client, open_bucket).status_code == 200
    client.force_login(over_bucket.recipient_user)
    assert open_study(client, over_bucket).status_code == 403


def test_a_revoked_bucket_is_refused(client):
    bucket = make_bucket(require_otp=False)
    Bucket.objects.filter(pk=bucket.pk).update(revoked_at=timezone.now())
    client.force_login(bucket.recipient_user)

    response = open_study(client, bucket)

    assert response.status_code == 403
    content = response.content.decode()
    assert "Access to this share was withdrawn" in content
    assert "Radiologie AZ Sint-Jan" in content
    assert_no_study_data(response)
    assert refusal_event().details["refusal"] == "revoked"


def test_a_revoked_share_is_refused(client):
    bucket = make_bucket(require_otp=False)
    Share.objects.filter(pk=bucket.share_id).update(revoked_at=timezone.now())
    client.force_login(bucket.recipient_user)

    response = open_study(client, bucket)

    assert response.status_code == 403
    assert_no_study_data(response)


def test_a_locked_bucket_names_the_department_to_contact(client):
    bucket = make_bucket(require_otp=True)
    Bucket.objects.filter(pk=bucket.pk).update(
        locked_at=timezone.now(), failed_otp_attempts=5
    )
    client.force_login(bucket.recipient_user)

    for url in (
        reverse("sharing:received", kwargs={"bucket_id": bucket.pk}),
        reverse("sharing:bucket_code", kwargs={"bucket_id": bucket.pk}),
    ):
        response = client.get(url)
        content = response.content.decode()
        assert response.status_code == 403
        assert "This share is locked" in content
        assert "Please contact <strong>Radiologie AZ Sint-Jan</strong>" in content
        assert_no_study_data(response)
    response = open_study(client, bucket)
    assert response.status_code == 403
    assert (
        AuditEvent.objects.filter(
            action="access_refused", details__refusal="locked"
        ).count()
        == 3
    )


def test_a_guessed_bucket_id_is_refused(client):
    bucket = make_bucket(require_otp=False)
    client.force_login(bucket.recipient_user)

    response = client.get(
        reverse("sharing:received", kwargs={"bucket_id": bucket.pk + 1000})
    )

    assert response.status_code == 404
    assert "This share is not for you" in response.content.decode()
    event = refusal_event()
    assert event.details == {
        "refusal": "not_recipient",
        "path_name": "sharing:received",
        "bucket_id": str(bucket.pk + 1000),
    }


def test_someone_elses_bucket_id_is_refused(client):
    bucket = make_bucket(require_otp=False)
    client.force_login(UserFactory())

    response = open_study(client, bucket)

    assert response.status_code == 404
    assert_no_study_data(response)
    assert refusal_event().details["refusal"] == "not_recipient"


def test_a_study_outside_the_bucket_is_not_found(client):
    bucket = make_bucket(require_otp=False)
    other = make_bucket(require_otp=False)
    client.force_login(bucket.recipient_user)

    response = client.get(
        reverse(
            "sharing:received_study",
            kwargs={
                "bucket_id": bucket.pk,
                "study_id": other.share.studies.get().pk,
            },
        )
    )

    assert response.status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    bucket = make_bucket(require_otp=False)

    response = open_study(client, bucket)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_group_and_department_members_are_recipients(client):
    member = UserFactory()
    group = UserGroupFactory()
    group.members.add(member)
    department = DepartmentFactory()
    MembershipFactory(user=member, department=department)
    via_group = make_bucket(require_otp=False, bucket_kwargs={"recipient_group": group})
    via_department = make_bucket(
        require_otp=False, bucket_kwargs={"recipient_department": department}
    )
    client.force_login(member)

    assert open_study(client, via_group).status_code == 200
    assert open_study(client, via_department).status_code == 200
    client.force_login(UserFactory())
    assert open_study(client, via_group).status_code == 404
    assert open_study(client, via_department).status_code == 404


def test_a_two_factor_bucket_asks_for_the_code_before_any_data(client):
    bucket = make_bucket(require_otp=True)
    client.force_login(bucket.recipient_user)

    response = open_study(client, bucket)

    assert response.status_code == 302
    assert response["Location"] == reverse(
        "sharing:bucket_code", kwargs={"bucket_id": bucket.pk}
    )
