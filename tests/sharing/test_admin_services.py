"""Unlock and revoke: the services behind Status Forwarding and the admin actions."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.utils import timezone

from sharing.access.guard import AccessRefused, get_bucket_for_request
from sharing.access.otp import VerifyStatus, otp_verify
from sharing.models import (
    AuditEvent,
    BucketUnlock,
    Notification,
    OTPDevice,
    hash_secret,
)
from sharing.status.guard import (
    SenderAction,
    departments_administered_by,
    sender_may,
)
from sharing.status.services import (
    BucketAlreadyRevoked,
    BucketNotLocked,
    bucket_revoke,
    bucket_unlock,
    notification_retry,
)
from tests.factories import OTPDeviceFactory, build_admin_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_admin_world()


def _request_from(user, ip="203.0.113.7"):
    request = RequestFactory().get("/", REMOTE_ADDR=ip, HTTP_USER_AGENT="TestBrowser/1")
    request.user = user
    request.session = {}
    return request


def test_it_resets_the_counter_and_records_who_unlocked(world):
    bucket = world.bucket_a

    unlock = bucket_unlock(
        bucket=bucket, by=world.admin_a, request=_request_from(world.admin_a)
    )

    bucket.refresh_from_db()
    assert bucket.failed_otp_attempts == 0
    assert bucket.locked_at is None
    assert BucketUnlock.objects.get() == unlock
    assert unlock.unlocked_by == world.admin_a
    assert unlock.failed_attempts == 5
    assert abs(unlock.unlocked_at - timezone.now()) < datetime.timedelta(minutes=1)


def test_it_audits_an_unlock_exactly_once(world):
    bucket_unlock(
        bucket=world.bucket_a, by=world.admin_a, request=_request_from(world.admin_a)
    )

    event = AuditEvent.objects.get()
    assert event.action == AuditEvent.Action.BUCKET_UNLOCKED
    assert event.actor == world.admin_a
    assert event.bucket == world.bucket_a
    assert event.department == world.dept_a
    assert event.ip_address == "203.0.113.7"
    assert event.user_agent == "TestBrowser/1"
    assert event.study_uids == [
        s.study_instance_uid for s in world.bucket_a.share.studies.all()
    ]


def test_it_lets_the_recipient_verify_after_an_unlock(world):
    bucket = world.bucket_a
    recipient = bucket.recipient_user
    device = OTPDeviceFactory(bucket=bucket, user=recipient)
    assert otp_verify(bucket=bucket, user=recipient, code="000000").status == (
        VerifyStatus.LOCKED
    )

    bucket_unlock(bucket=bucket, by=world.admin_a)
    # A fresh code, as the code page would send after the unlock.
    OTPDevice.objects.filter(pk=device.pk).update(
        token_hash=hash_secret("424242"),
        valid_until=timezone.now() + datetime.timedelta(minutes=5),
    )
    result = otp_verify(bucket=bucket, user=recipient, code="424242")

    assert result.status == VerifyStatus.OK


def test_it_refuses_to_unlock_a_bucket_that_is_not_locked(world):
    bucket = world.bucket_a
    bucket_unlock(bucket=bucket, by=world.admin_a)

    with pytest.raises(BucketNotLocked):
        bucket_unlock(bucket=bucket, by=world.admin_a)

    assert BucketUnlock.objects.count() == 1
    assert AuditEvent.objects.count() == 1


def test_it_refuses_an_unlock_by_another_departments_admin(world):
    with pytest.raises(PermissionDenied):
        bucket_unlock(bucket=world.bucket_b, by=world.admin_a)

    world.bucket_b.refresh_from_db()
    assert world.bucket_b.locked_at is not None
    assert world.bucket_b.failed_otp_attempts == 5
    assert not AuditEvent.objects.exists()


def test_it_refuses_an_unlock_by_the_sender_who_is_no_admin(world):
    with pytest.raises(PermissionDenied):
        bucket_unlock(bucket=world.bucket_a, by=world.sender_a)


def test_it_lets_the_service_desk_unlock_any_department(world):
    bucket_unlock(bucket=world.bucket_b, by=world.desk)

    world.bucket_b.refresh_from_db()
    assert world.bucket_b.locked_at is None


def test_it_refuses_the_recipients_next_request_after_a_revoke(world):
    bucket = world.bucket_a
    bucket.locked_at = None
    bucket.failed_otp_attempts = 0
    bucket.require_otp = False
    bucket.save()
    recipient = bucket.recipient_user
    assert get_bucket_for_request(_request_from(recipient), bucket.pk) == bucket

    bucket_revoke(bucket=bucket, by=world.admin_a, request=_request_from(world.admin_a))

    with pytest.raises(AccessRefused) as refused:
        get_bucket_for_request(_request_from(recipient), bucket.pk)
    assert refused.value.reason == "revoked"


def test_it_audits_a_revoke_exactly_once_and_records_who(world):
    bucket_revoke(bucket=world.bucket_a, by=world.sender_a)

    world.bucket_a.refresh_from_db()
    assert world.bucket_a.revoked_by == world.sender_a
    assert world.bucket_a.revoked_at is not None
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.bucket) == (
        AuditEvent.Action.REVOKED,
        world.sender_a,
        world.bucket_a,
    )


def test_it_refuses_to_revoke_twice(world):
    bucket_revoke(bucket=world.bucket_a, by=world.admin_a)

    with pytest.raises(BucketAlreadyRevoked):
        bucket_revoke(bucket=world.bucket_a, by=world.admin_a)
    assert AuditEvent.objects.count() == 1


def test_it_refuses_a_revoke_by_a_colleague_who_did_not_send_it(world):
    with pytest.raises(PermissionDenied):
        bucket_revoke(bucket=world.bucket_a, by=world.plain)
    with pytest.raises(PermissionDenied):
        bucket_revoke(bucket=world.bucket_b, by=world.admin_a)
    assert not AuditEvent.objects.exists()


def test_it_answers_who_may_administer_and_revoke(world):
    unlock, revoke = SenderAction.UNLOCK, SenderAction.REVOKE
    assert sender_may(user=world.admin_a, bucket=world.bucket_a, action=unlock)
    assert not sender_may(user=world.admin_a, bucket=world.bucket_b, action=unlock)
    assert sender_may(user=world.desk, bucket=world.bucket_b, action=unlock)
    assert not sender_may(user=world.sender_a, bucket=world.bucket_a, action=unlock)
    assert sender_may(user=world.sender_a, bucket=world.bucket_a, action=revoke)
    assert not sender_may(user=world.sender_a, bucket=world.bucket_b, action=revoke)
    assert list(departments_administered_by(user=world.admin_a)) == [world.dept_a]
    assert set(departments_administered_by(user=world.desk)) >= {
        world.dept_a,
        world.dept_b,
    }


def test_it_queues_a_failed_notification_again(
    world, django_capture_on_commit_callbacks
):
    notification = Notification.objects.create(
        channel=Notification.Channel.EMAIL,
        kind=Notification.Kind.SHARE,
        bucket=world.bucket_a,
        to_address="x@example.org",
        language="en",
        status=Notification.Status.FAILED,
        error="550 mailbox unavailable",
    )

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        queued = notification_retry(notification=notification)

    assert queued is True
    assert len(callbacks) == 1
    notification.refresh_from_db()
    # The in-process task ran after commit and sent it through the file outbox.
    assert notification.status == Notification.Status.SENT


def test_it_does_not_requeue_a_notification_that_has_not_failed(world):
    notification = Notification.objects.create(
        channel=Notification.Channel.EMAIL,
        kind=Notification.Kind.SHARE,
        bucket=world.bucket_a,
        to_address="x@example.org",
        language="en",
        status=Notification.Status.SENT,
    )

    assert notification_retry(notification=notification) is False
    notification.refresh_from_db()
    assert notification.status == Notification.Status.SENT


def test_it_revokes_the_reshares_made_from_a_revoked_bucket(world):
    from tests.factories import BucketFactory, ShareFactory

    bucket = world.bucket_a
    reshare = BucketFactory(
        share=ShareFactory(
            parent_bucket=bucket,
            sender=bucket.recipient_user,
            source_department=bucket.share.source_department,
        ),
        require_otp=False,
    )
    second_hop = BucketFactory(share=ShareFactory(parent_bucket=reshare))

    bucket_revoke(bucket=bucket, by=world.admin_a)

    for onward in (reshare, second_hop):
        with pytest.raises(AccessRefused) as refused:
            get_bucket_for_request(_request_from(onward.recipient_user), onward.pk)
        assert refused.value.reason == "revoked"
    event = AuditEvent.objects.get(action=AuditEvent.Action.REVOKED)
    assert event.details == {"reshares_revoked": 2}
