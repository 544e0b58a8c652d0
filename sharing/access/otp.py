"""The SMS code gate of a bucket with two-factor: send a code, check a code.

The code itself is made by the SMS task at send time (six digits from
`secrets`); the database only ever holds its hash and its end of validity on the
OTPDevice of (bucket, user). This module decides when a code may be sent
(60-second cool-down, a cap per hour) and whether a submitted code opens the
bucket. The bucket's counter of failed codes and its lock change in one
transaction that holds the bucket row, so concurrent wrong codes can never count
more than five before the lock.

A submission counts as a failure only while a valid code is pending: with no
code to guess (never sent, used, or expired) nothing can be gained by guessing,
and a double-click on the right code must not lock the bucket.
"""

import datetime
import hmac
from dataclasses import dataclass

from django.db import models, transaction
from django.utils import timezone

from ..audit.record import audit_record
from ..models import AuditEvent, Bucket, Notification, OTPDevice, hash_secret
from ..outbox.queue import notification_queue_bucket_locked, notification_queue_otp

# At most this many codes per bucket and user in any hour (the cool-down between
# two is the device's, OTPDevice.COOLDOWN_SECONDS).
SENDS_PER_HOUR = 5
# What a verification changes on the device: the pending code and the throttle.
_CODE_FIELDS = [
    "token_hash",
    "valid_until",
    "throttling_failure_count",
    "throttling_failure_timestamp",
]


class SendStatus(models.TextChoices):
    SENT = "sent"
    COOLDOWN = "cooldown"
    HOURLY_CAP = "hourly_cap"
    NO_MOBILE = "no_mobile"
    LOCKED = "locked"


class VerifyStatus(models.TextChoices):
    OK = "ok"
    WRONG = "wrong"
    NO_CODE = "no_code"  # nothing pending: never sent, already used, or expired
    LOCKED = "locked"  # locked before this attempt, or by it


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    retry_at: datetime.datetime | None = None

    @property
    def sent(self):
        return self.status == SendStatus.SENT


@dataclass(frozen=True)
class VerifyResult:
    status: VerifyStatus
    attempts_left: int = 0
    locked_now: bool = False

    @property
    def ok(self):
        return self.status == VerifyStatus.OK


def otp_device_get(*, bucket, user):
    """Return the OTP device of (bucket, user), creating it the first time."""
    device, _created = OTPDevice.objects.get_or_create(
        bucket=bucket, user=user, defaults={"name": f"SMS for bucket {bucket.pk}"}
    )
    return device


def cooldown_until(device, *, now=None):
    """Return when the device may send again, or None when it may send now."""
    if device.last_generated_timestamp is None:
        return None
    until = device.last_generated_timestamp + datetime.timedelta(
        seconds=device.get_cooldown_duration()
    )
    return until if until > (now or timezone.now()) else None


def code_pending(device, *, now=None):
    """Return whether the device holds a code that has not expired."""
    return bool(
        device.token_hash
        and device.valid_until
        and device.valid_until > (now or timezone.now())
    )


def code_on_its_way(device, *, now=None):
    """Return whether a code for the device is valid now or still being sent.

    False means no SMS holds a code that would open the bucket (the last one
    was used, expired, or cleared by a lock), whatever the cool-down says.
    """
    if code_pending(device, now=now):
        return True
    return Notification.objects.filter(
        kind=Notification.Kind.OTP,
        bucket_id=device.bucket_id,
        user_id=device.user_id,
        status__in=(Notification.Status.PENDING, Notification.Status.SENDING),
    ).exists()


def _sends_in_last_hour(*, bucket, user, now):
    return Notification.objects.filter(
        kind=Notification.Kind.OTP,
        bucket=bucket,
        user=user,
        created_at__gt=now - datetime.timedelta(hours=1),
    ).order_by("created_at")


def otp_send(*, bucket, user, request=None):
    """Queue a new SMS code for (bucket, user), unless cool-down or cap forbid it.

    The cool-down is django-otp's CooldownMixin timestamp on the device; the hourly
    cap counts the OTP notifications of this bucket and user. A resend never
    touches the bucket's counter of failed codes. The SMS task makes the code and
    audits OTP_SENT when it has actually sent it.
    """
    if not user.mobile:
        return SendResult(SendStatus.NO_MOBILE)
    device = otp_device_get(bucket=bucket, user=user)
    with transaction.atomic():
        device = OTPDevice.objects.select_for_update().get(pk=device.pk)
        if Bucket.objects.filter(pk=bucket.pk, locked_at__isnull=False).exists():
            return SendResult(SendStatus.LOCKED)
        now = timezone.now()
        wait_until = cooldown_until(device, now=now)
        if wait_until is not None:
            return SendResult(SendStatus.COOLDOWN, retry_at=wait_until)
        recent = list(
            _sends_in_last_hour(bucket=bucket, user=user, now=now).values_list(
                "created_at", flat=True
            )
        )
        if len(recent) >= SENDS_PER_HOUR:
            retry_at = recent[-SENDS_PER_HOUR] + datetime.timedelta(hours=1)
            return SendResult(SendStatus.HOURLY_CAP, retry_at=retry_at)
        device.cooldown_set(commit=False)
        device.save(update_fields=["last_generated_timestamp"])
        notification_queue_otp(device=device)
    return SendResult(SendStatus.SENT)


def _normalize(code):
    return "".join(str(code or "").split())


def otp_verify(*, bucket, user, code, request=None):
    """Check a submitted code against the pending code of (bucket, user).

    A right code (bound to this bucket and this user, within its 5 minutes) is
    used up and resets the bucket's counter; a wrong one adds one, and the fifth
    in succession locks the bucket, audits it and mails the sending department's
    admins. A locked bucket refuses even the right code.
    """
    submitted_hash = hash_secret(_normalize(code))
    with transaction.atomic():
        held = (
            Bucket.objects.select_for_update()
            .select_related("share__source_department")
            .get(pk=bucket.pk)
        )
        if held.locked_at is not None:
            _audit_failed(request, user, held, reason="locked")
            return VerifyResult(VerifyStatus.LOCKED)
        device = (
            OTPDevice.objects.select_for_update().filter(bucket=held, user=user).first()
        )
        now = timezone.now()
        if device is None or not code_pending(device, now=now):
            _audit_failed(request, user, held, reason="no_code")
            return VerifyResult(
                VerifyStatus.NO_CODE,
                attempts_left=held.MAX_FAILED_OTP - held.failed_otp_attempts,
            )
        if hmac.compare_digest(device.token_hash, submitted_hash):
            device.token_hash = ""
            device.valid_until = None
            device.throttle_reset(commit=False)
            device.save(update_fields=_CODE_FIELDS)
            held.failed_otp_attempts = 0
            held.save(update_fields=["failed_otp_attempts"])
            audit_record(
                action=AuditEvent.Action.OTP_SUCCEEDED,
                request=request,
                actor=user,
                bucket=held,
            )
            return VerifyResult(VerifyStatus.OK, attempts_left=held.MAX_FAILED_OTP)

        held.failed_otp_attempts += 1
        device.throttle_increment(commit=False)
        locked_now = held.failed_otp_attempts >= held.MAX_FAILED_OTP
        if locked_now:
            held.locked_at = now
            # Nothing may open a locked bucket: the pending code goes too.
            device.token_hash = ""
            device.valid_until = None
        held.save(update_fields=["failed_otp_attempts", "locked_at"])
        device.save(update_fields=_CODE_FIELDS)
        _audit_failed(
            request, user, held, reason="wrong", attempt=held.failed_otp_attempts
        )
        if locked_now:
            audit_record(
                action=AuditEvent.Action.BUCKET_LOCKED,
                request=request,
                actor=user,
                bucket=held,
                details={"failed_attempts": held.failed_otp_attempts},
            )
            notification_queue_bucket_locked(bucket=held)
            return VerifyResult(VerifyStatus.LOCKED, locked_now=True)
        return VerifyResult(
            VerifyStatus.WRONG,
            attempts_left=held.MAX_FAILED_OTP - held.failed_otp_attempts,
        )


def _audit_failed(request, user, bucket, *, reason, attempt=None):
    details = {"outcome": reason}
    if attempt is not None:
        details["attempt"] = attempt
    audit_record(
        action=AuditEvent.Action.OTP_FAILED,
        request=request,
        actor=user,
        bucket=bucket,
        details=details,
    )
