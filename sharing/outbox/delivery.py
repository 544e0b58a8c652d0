"""The outbox's sending side, on the worker: render and send a claimed message.

The ``send_notification`` task claims a row with a conditional update (so a task
delivered twice sends once) and calls ``notification_send``. The bucket link is
derived from the bucket when the mail is rendered; an OTP code is generated here,
stored only as a hash on the device and sent: it lives in memory and in the SMS
only.
"""

import datetime
import logging
import random
import secrets
import smtplib
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from pacsshare import sms

from ..audit.record import audit_record
from ..models import (
    AuditEvent,
    Bucket,
    Notification,
    OTPDevice,
    Pseudonym,
    hash_secret,
)

logger = logging.getLogger(__name__)

OTP_VALIDITY_MINUTES = 5
OTP_DIGITS = 6


class DeliveryError(Exception):
    """A message could not be delivered."""


class TransientDeliveryError(DeliveryError):
    """Delivery failed for a reason that may pass: retry later."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed for good: mark the notification failed."""


def bucket_link_url(bucket: Bucket) -> str:
    """Return the absolute link that opens a bucket (``/b/<token>/``)."""
    return settings.SITE_URL + reverse("sharing:bucket_link", args=[bucket.link_token])


def share_mail_subject(*, share, language) -> str:
    """Return the subject of a share e-mail in the given language."""
    with translation.override(language):
        subject = _("%(sender)s shared an exam with you") % {
            "sender": share.sender.display_name
        }
        if share.urgent:
            subject = _("Urgent: %(subject)s") % {"subject": subject}
    return " ".join(subject.split())


def bucket_locked_mail_subject(*, language) -> str:
    """Return the subject of the alert about a locked bucket, in the language."""
    with translation.override(language):
        return str(_("A shared exam was locked after too many wrong codes"))


def _exam_lines(bucket):
    share = bucket.share
    pseudonyms = {}
    if share.anonymize:
        pseudonyms = {p.patient_id: p for p in Pseudonym.objects.filter(bucket=bucket)}
    exams = []
    studies = share.studies.select_related("patient").order_by("study_date", "id")
    for study in studies:
        if share.anonymize:
            pseudonym = pseudonyms.get(study.patient_id)
            # Never fall back to the real initials of an anonymized patient.
            initials = pseudonym.initials if pseudonym else "?"
        else:
            initials = study.patient.initials or "?"
        exams.append(
            {
                "initials": initials,
                "description": study.description or _("Exam"),
                "date": (
                    formats.date_format(study.study_date, "DATE_FORMAT")
                    if study.study_date
                    else ""
                ),
            }
        )
    return exams


def render_share_mail(notification: Notification) -> tuple[str, str, str]:
    """Return (subject, text, html) of a share e-mail, in the share's language."""
    bucket = notification.bucket
    share = bucket.share
    language = notification.language or share.language
    with translation.override(language):
        if bucket.recipient_group_id:
            via = bucket.recipient_group.name
        elif bucket.recipient_department_id:
            via = bucket.recipient_department.name
        else:
            via = ""
        exams = _exam_lines(bucket)
        context = {
            "recipient_name": notification.user.display_name
            if notification.user
            else "",
            "sender_name": share.sender.display_name,
            "department_name": share.source_department.name,
            "exams": exams,
            "exam_count": len(exams),
            "link": bucket_link_url(bucket),
            "message": share.message.strip(),
            "require_otp": bucket.require_otp,
            "via": via,
            "urgent": share.urgent,
            "language_code": language,
        }
        subject = share_mail_subject(share=share, language=language)
        text = render_to_string("sharing/email/share_body.txt", context)
        html = render_to_string("sharing/email/share_body.html", context)
    return subject, text, html


def render_bucket_locked_mail(notification: Notification) -> tuple[str, str, str]:
    """Return (subject, text, html) of the alert to an admin about a locked bucket."""
    bucket = notification.bucket
    share = bucket.share
    with translation.override(notification.language):
        context = {
            "admin_name": notification.user.display_name if notification.user else "",
            "sender_name": share.sender.display_name,
            "recipient_name": str(bucket.recipient),
            "shared_on": formats.date_format(
                timezone.localtime(share.created_at), "DATE_FORMAT"
            ),
            "attempts": Bucket.MAX_FAILED_OTP,
            "language_code": notification.language,
            "link": settings.SITE_URL + reverse("sharing:status_forwarding"),
        }
        subject = bucket_locked_mail_subject(language=notification.language)
        text = render_to_string("sharing/email/bucket_locked_body.txt", context)
        html = render_to_string("sharing/email/bucket_locked_body.html", context)
    return subject, text, html


def render_otp_sms(*, code: str, language: str) -> str:
    """Return the text of the OTP SMS: the code and its validity, nothing else."""
    with translation.override(language):
        body = render_to_string(
            "sharing/sms/otp.txt", {"code": code, "minutes": OTP_VALIDITY_MINUTES}
        )
    return body.strip()


def notification_claim(*, notification_id: int) -> Notification | None:
    """Claim a pending notification for sending; None when someone else has it."""
    claimed = Notification.objects.filter(
        pk=notification_id, status=Notification.Status.PENDING
    ).update(status=Notification.Status.SENDING, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return Notification.objects.select_related(
        "user",
        "bucket__share__sender",
        "bucket__share__source_department",
        "bucket__recipient_group",
        "bucket__recipient_department",
    ).get(pk=notification_id)


def notification_send(*, notification: Notification) -> None:
    """Send a claimed notification and mark it sent; raise a DeliveryError if not."""
    if notification.channel == Notification.Channel.SMS:
        provider_id = _send_otp_sms(notification)
    else:
        provider_id = _send_email(notification)
    Notification.objects.filter(
        pk=notification.pk, status=Notification.Status.SENDING
    ).update(
        status=Notification.Status.SENT,
        provider_id=provider_id[:100],
        sent_at=timezone.now(),
        error="",
    )


def notification_release(*, notification: Notification, error: str) -> None:
    """Put a claimed notification back to pending after a transient error."""
    Notification.objects.filter(
        pk=notification.pk, status=Notification.Status.SENDING
    ).update(status=Notification.Status.PENDING, error=error[:2000])


def notification_mark_failed(*, notification: Notification, error: str) -> None:
    """Mark a claimed notification failed for good, keeping the error for admins."""
    Notification.objects.filter(
        pk=notification.pk, status=Notification.Status.SENDING
    ).update(status=Notification.Status.FAILED, error=error[:2000])
    logger.warning(
        "Notification %s (%s) failed: %s", notification.pk, notification.kind, error
    )


def retry_delay(retries: int) -> float:
    """Return the countdown before retry number ``retries + 1``: backoff with jitter."""
    ceiling = min(
        settings.NOTIFICATION_RETRY_BASE * 2**retries, settings.NOTIFICATION_RETRY_MAX
    )
    return random.uniform(ceiling / 2, ceiling)


def is_transient_smtp_error(exc: Exception) -> bool:
    """Return True when an SMTP or network error may pass on a later try."""
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPException):
        return False
    return isinstance(exc, OSError)  # socket errors, refused, TimeoutError


def _render_email(notification):
    if notification.kind == Notification.Kind.SHARE:
        return render_share_mail(notification)
    if notification.kind == Notification.Kind.BUCKET_LOCKED:
        return render_bucket_locked_mail(notification)
    raise PermanentDeliveryError(f"No e-mail for kind {notification.kind!r}")


def _send_email(notification):
    subject, text, html = _render_email(notification)
    message_id = make_msgid(idstring=f"notification-{notification.pk}")
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.to_address],
        headers={
            "Message-ID": message_id,
            "Auto-Submitted": "auto-generated",
            "X-PACSshare-Notification": str(notification.pk),
        },
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        if is_transient_smtp_error(exc):
            raise TransientDeliveryError(error) from exc
        raise PermanentDeliveryError(error) from exc
    return message_id


def _send_otp_sms(notification):
    if notification.kind != Notification.Kind.OTP:
        raise PermanentDeliveryError(f"No SMS for kind {notification.kind!r}")
    code = f"{secrets.randbelow(10**OTP_DIGITS):0{OTP_DIGITS}d}"
    with transaction.atomic():
        device = (
            OTPDevice.objects.select_for_update()
            .filter(bucket_id=notification.bucket_id, user_id=notification.user_id)
            .first()
        )
        if device is None:
            raise PermanentDeliveryError("The OTP device no longer exists.")
        device.token_hash = hash_secret(code)
        device.valid_until = timezone.now() + datetime.timedelta(
            minutes=OTP_VALIDITY_MINUTES
        )
        device.save(update_fields=["token_hash", "valid_until"])
    body = render_otp_sms(code=code, language=notification.language)
    try:
        provider_id = sms.send_sms(notification.to_address, body)
    except sms.SmsError as exc:
        # Belt and braces: no provider message may carry the code into the DB or logs.
        error = f"{type(exc).__name__}: {exc}".replace(code, "******")
        if isinstance(exc, sms.TransientSmsError):
            raise TransientDeliveryError(error) from None
        raise PermanentDeliveryError(error) from None
    audit_record(
        action=AuditEvent.Action.OTP_SENT,
        actor=notification.user,
        bucket=notification.bucket,
        details={
            "notification": notification.pk,
            "to": sms.mask_number(notification.to_address),
        },
    )
    return provider_id or ""
