"""The access log helper: who, what, which studies, from where, never a secret."""

import datetime

import pytest
from django.test import RequestFactory
from django.utils import timezone

from sharing.access.otp import otp_verify
from sharing.audit.record import audit_record, client_ip
from sharing.models import AuditEvent, OTPDevice, hash_secret
from tests.factories import OTPDeviceFactory, build_admin_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_admin_world()


def _request(user=None, **meta):
    request = RequestFactory().get("/", **meta)
    if user is not None:
        request.user = user
    return request


def test_it_records_actor_objects_address_agent_and_department(world):
    bucket = world.bucket_a
    request = _request(
        bucket.recipient_user, REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="Firefox/140"
    )
    study = bucket.share.studies.get()

    event = audit_record(
        action=AuditEvent.Action.DOWNLOADED,
        request=request,
        bucket=bucket,
        studies=[study],
    )

    event.refresh_from_db()
    assert event.actor == bucket.recipient_user
    assert event.bucket == bucket
    assert event.share == bucket.share
    assert event.department == world.dept_a
    assert event.study_uids == [study.study_instance_uid]
    assert event.ip_address == "192.0.2.10"
    assert event.user_agent == "Firefox/140"
    assert event.created_at.utcoffset().total_seconds() == 0


def test_it_ignores_a_forwarded_address_unless_a_proxy_is_trusted(settings):
    request = _request(
        REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.33"
    )

    settings.TRUSTED_PROXY_COUNT = 0
    direct = client_ip(request)
    settings.TRUSTED_PROXY_COUNT = 1
    proxied = client_ip(request)

    assert direct == "10.0.0.2"
    # Behind one proxy, the entry it appended is the client; "6.6.6.6" is forged.
    assert proxied == "192.0.2.33"


def test_it_refuses_details_that_could_hold_a_secret(world):
    for key in ("otp", "code", "token", "password"):
        with pytest.raises(ValueError):
            audit_record(
                action=AuditEvent.Action.OTP_FAILED,
                bucket=world.bucket_a,
                details={key: "123456"},
            )
    with pytest.raises(ValueError):
        audit_record(
            action=AuditEvent.Action.REVOKED,
            bucket=world.bucket_a,
            details={"reason": "Second opinion"},
        )
    assert not AuditEvent.objects.exists()


def test_it_keeps_the_reason_only_in_the_share_created_event(world):
    event = audit_record(
        action=AuditEvent.Action.SHARE_CREATED,
        share=world.bucket_a.share,
        details={"reason": "Second opinion"},
    )

    assert event.details == {"reason": "Second opinion"}


def test_it_cannot_change_or_delete_an_event(world):
    event = audit_record(action=AuditEvent.Action.REVOKED, bucket=world.bucket_a)

    event.action = AuditEvent.Action.OTP_SUCCEEDED
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()


def test_it_truncates_a_long_user_agent(world):
    event = audit_record(
        action=AuditEvent.Action.BUCKET_OPENED,
        request=_request(world.sender_a, HTTP_USER_AGENT="x" * 1000),
        bucket=world.bucket_a,
    )

    assert len(event.user_agent) == 300


def _pending_code(bucket, user, code="135790"):
    device = OTPDeviceFactory(bucket=bucket, user=user)
    OTPDevice.objects.filter(pk=device.pk).update(
        token_hash=hash_secret(code),
        valid_until=timezone.now() + datetime.timedelta(minutes=5),
    )
    return code


def test_it_leaves_one_event_per_wrong_and_right_code(world):
    bucket = world.bucket_a
    bucket.locked_at, bucket.failed_otp_attempts = None, 0
    bucket.save()
    recipient = bucket.recipient_user
    code = _pending_code(bucket, recipient)

    otp_verify(bucket=bucket, user=recipient, code="000000")
    otp_verify(bucket=bucket, user=recipient, code=code)

    assert list(
        AuditEvent.objects.order_by("id").values_list("action", "actor", "bucket")
    ) == [
        ("otp_failed", recipient.pk, bucket.pk),
        ("otp_succeeded", recipient.pk, bucket.pk),
    ]
    assert code not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_it_leaves_one_lock_event_when_the_fifth_code_fails(world):
    bucket = world.bucket_a
    bucket.locked_at, bucket.failed_otp_attempts = None, 4
    bucket.save()
    recipient = bucket.recipient_user
    _pending_code(bucket, recipient)

    otp_verify(bucket=bucket, user=recipient, code="000000")

    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["otp_failed", "bucket_locked"]
