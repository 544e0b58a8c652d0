"""The SMS code of a two-factor bucket: counting, locking, resending, expiry."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from sharing.access.otp import SendStatus, VerifyStatus, otp_send, otp_verify
from sharing.models import AuditEvent, Bucket, Notification, OTPDevice
from tests.factories import UserFactory, make_bucket
from tests.sharing.access_helpers import (  # noqa: F401
    send_code,
    wrong_code,
)

pytestmark = pytest.mark.django_db


def allow_resend(bucket, user):
    """Let the 60-second cool-down pass."""
    OTPDevice.objects.filter(bucket=bucket, user=user).update(
        last_generated_timestamp=timezone.now() - datetime.timedelta(seconds=61)
    )


def verify(bucket, code, capture, user=None):
    with capture(execute=True):
        return otp_verify(bucket=bucket, user=user or bucket.recipient_user, code=code)


def test_it_opens_with_the_right_code_once(
    sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    user = bucket.recipient_user
    code = send_code(bucket, user, django_capture_on_commit_callbacks)

    first = verify(bucket, code, django_capture_on_commit_callbacks)
    second = verify(bucket, code, django_capture_on_commit_callbacks)

    assert first.status == VerifyStatus.OK
    assert second.status == VerifyStatus.NO_CODE
    device = OTPDevice.objects.get(bucket=bucket, user=user)
    assert device.token_hash == ""
    assert AuditEvent.objects.filter(action="otp_succeeded", bucket=bucket).count() == 1


def test_it_locks_after_five_wrong_codes_in_succession(
    sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    code = send_code(bucket, bucket.recipient_user, django_capture_on_commit_callbacks)

    results = [
        verify(bucket, wrong_code(code), django_capture_on_commit_callbacks)
        for _ in range(5)
    ]

    assert [r.status for r in results] == [VerifyStatus.WRONG] * 4 + [
        VerifyStatus.LOCKED
    ]
    assert [r.attempts_left for r in results[:4]] == [4, 3, 2, 1]
    bucket.refresh_from_db()
    assert bucket.failed_otp_attempts == 5
    assert bucket.locked_at is not None
    assert AuditEvent.objects.filter(action="bucket_locked", bucket=bucket).count() == 1
    assert AuditEvent.objects.filter(action="otp_failed", bucket=bucket).count() == 5


def test_a_locked_bucket_refuses_even_the_right_code(
    sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    code = send_code(bucket, bucket.recipient_user, django_capture_on_commit_callbacks)
    for _ in range(5):
        verify(bucket, wrong_code(code), django_capture_on_commit_callbacks)

    result = verify(bucket, code, django_capture_on_commit_callbacks)

    assert result.status == VerifyStatus.LOCKED
    bucket.refresh_from_db()
    assert bucket.failed_otp_attempts == 5


def test_the_lock_mails_the_sending_department_admins(
    sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    code = send_code(bucket, bucket.recipient_user, django_capture_on_commit_callbacks)

    for _ in range(5):
        verify(bucket, wrong_code(code), django_capture_on_commit_callbacks)

    alerts = Notification.objects.filter(kind=Notification.Kind.BUCKET_LOCKED)
    assert [n.to_address for n in alerts] == ["admin@azsintjan.example"]
    assert [m.to for m in mail.outbox] == [["admin@azsintjan.example"]]


def test_four_wrong_then_resend_then_one_wrong_locks(
    sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    user = bucket.recipient_user
    code = send_code(bucket, user, django_capture_on_commit_callbacks)
    for _ in range(4):
        verify(bucket, wrong_code(code), django_capture_on_commit_callbacks)

    allow_resend(bucket, user)
    new_code = send_code(bucket, user, django_capture_on_commit_callbacks)
    bucket.refresh_from_db()
    assert bucket.failed_otp_attempts == 4  # a resend never resets the counter
    result = verify(bucket, wrong_code(new_code), django_capture_on_commit_callbacks)

    assert result.status == VerifyStatus.LOCKED
    bucket.refresh_from_db()
    assert bucket.locked_at is not None


def test_a_right_code_after_four_wrong_resets_the_counter(
    sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    user = bucket.recipient_user
    code = send_code(bucket, user, django_capture_on_commit_callbacks)
    for _ in range(4):
        verify(bucket, wrong_code(code), django_capture_on_commit_callbacks)

    result = verify(bucket, code, django_capture_on_commit_callbacks)

    assert result.status == VerifyStatus.OK
    bucket.refresh_from_db()
    assert bucket.failed_otp_attempts == 0
    assert bucket.locked_at is None
    # Five more wrong codes are needed to lock it now.
    allow_resend(bucket, user)
    code = send_code(bucket, user, django_capture_on_commit_callbacks)
    for _ in range(4):
        verify(bucket, wrong_code(code), django_capture_on_commit_callbacks)
    bucket.refresh_from_db()
    assert bucket.locked_at is None


def test_an_expired_code_fails(sms_outbox, django_capture_on_commit_callbacks):
    bucket = make_bucket()
    user = bucket.recipient_user
    code = send_code(bucket, user, django_capture_on_commit_callbacks)
    OTPDevice.objects.filter(bucket=bucket, user=user).update(
        valid_until=timezone.now() - datetime.timedelta(seconds=1)
    )

    result = verify(bucket, code, django_capture_on_commit_callbacks)

    assert result.status == VerifyStatus.NO_CODE
    assert not result.ok


def test_a_code_is_valid_for_five_minutes(
    sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    user = bucket.recipient_user
    before = timezone.now()
    send_code(bucket, user, django_capture_on_commit_callbacks)

    device = OTPDevice.objects.get(bucket=bucket, user=user)
    lifetime = device.valid_until - before
    assert datetime.timedelta(minutes=4, seconds=50) < lifetime
    assert lifetime <= datetime.timedelta(minutes=5, seconds=10)


def test_a_code_of_bucket_a_fails_on_bucket_b(
    sms_outbox, django_capture_on_commit_callbacks
):
    user = UserFactory(mobile="+32475123456")
    bucket_a = make_bucket(recipient=user)
    bucket_b = make_bucket(recipient=user)
    code_a = send_code(bucket_a, user, django_capture_on_commit_callbacks)
    code_b = send_code(bucket_b, user, django_capture_on_commit_callbacks)
    if code_a == code_b:  # one chance in a million: make them differ
        allow_resend(bucket_b, user)
        code_b = send_code(bucket_b, user, django_capture_on_commit_callbacks)

    result = verify(bucket_b, code_a, django_capture_on_commit_callbacks)

    assert result.status == VerifyStatus.WRONG
    bucket_b.refresh_from_db()
    assert bucket_b.failed_otp_attempts == 1
    # Bucket A's code is untouched and still opens bucket A only.
    assert verify(bucket_a, code_a, django_capture_on_commit_callbacks).ok


def test_a_code_is_bound_to_its_user(sms_outbox, django_capture_on_commit_callbacks):
    from tests.factories import UserGroupFactory

    alice = UserFactory(mobile="+32475000001")
    bob = UserFactory(mobile="+32475000002")
    group = UserGroupFactory()
    group.members.add(alice, bob)
    bucket = make_bucket(bucket_kwargs={"recipient_group": group})
    alice_code = send_code(bucket, alice, django_capture_on_commit_callbacks)
    send_code(bucket, bob, django_capture_on_commit_callbacks)

    result = verify(bucket, alice_code, django_capture_on_commit_callbacks, user=bob)

    assert not result.ok
    assert verify(bucket, alice_code, django_capture_on_commit_callbacks, user=alice).ok


def test_a_submission_with_no_pending_code_does_not_count(
    django_capture_on_commit_callbacks,
):
    bucket = make_bucket()

    result = verify(bucket, "123456", django_capture_on_commit_callbacks)

    assert result.status == VerifyStatus.NO_CODE
    assert Bucket.objects.get(pk=bucket.pk).failed_otp_attempts == 0


def test_resend_waits_60_seconds(sms_outbox, django_capture_on_commit_callbacks):
    bucket = make_bucket()
    user = bucket.recipient_user
    send_code(bucket, user, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        again = otp_send(bucket=bucket, user=user)

    assert again.status == SendStatus.COOLDOWN
    wait = again.retry_at - timezone.now()
    assert datetime.timedelta(seconds=55) < wait <= datetime.timedelta(seconds=60)
    assert len(sms_outbox) == 1


def test_resend_is_capped_per_hour(sms_outbox, django_capture_on_commit_callbacks):
    bucket = make_bucket()
    user = bucket.recipient_user
    for _ in range(5):
        allow_resend(bucket, user)
        send_code(bucket, user, django_capture_on_commit_callbacks)

    allow_resend(bucket, user)
    with django_capture_on_commit_callbacks(execute=True):
        sixth = otp_send(bucket=bucket, user=user)

    assert sixth.status == SendStatus.HOURLY_CAP
    assert sixth.retry_at > timezone.now() + datetime.timedelta(minutes=55)
    assert len(sms_outbox) == 5


def test_no_code_is_sent_for_a_locked_bucket(
    sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    Bucket.objects.filter(pk=bucket.pk).update(locked_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        result = otp_send(bucket=bucket, user=bucket.recipient_user)

    assert result.status == SendStatus.LOCKED
    assert sms_outbox == []


def test_no_code_without_a_mobile(sms_outbox, django_capture_on_commit_callbacks):
    bucket = make_bucket(recipient=UserFactory(mobile=""))

    with django_capture_on_commit_callbacks(execute=True):
        result = otp_send(bucket=bucket, user=bucket.recipient_user)

    assert result.status == SendStatus.NO_MOBILE
    assert sms_outbox == []
