"""The outbox's sending side, on the worker: render and send a claimed message.

The ``send_notification`` task claims a row with a conditional update (so a task
delivered twice sends once) and calls ``notification_send``. A share mail's
content but its link was built when the row was queued (``share_mail_context``);
the link is derived from the bucket's secret, which the claim returns, when the
mail is rendered. An OTP code is generated here, stored only as a hash on the
device and sent: it lives in memory and in the SMS only.

Per mail the worker makes two statements: the claim (an ``UPDATE … RETURNING``
of the row and its bucket's link secret) and the mark "sent", each its own
asynchronous commit; the SMTP connection stays open from mail to mail.
"""

import datetime
import functools
import json
import logging
import random
import secrets
import smtplib
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

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
from . import mime

logger = logging.getLogger(__name__)

OTP_VALIDITY_MINUTES = 5
OTP_DIGITS = 6
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class DeliveryError(Exception):
    """A message could not be delivered."""


class TransientDeliveryError(DeliveryError):
    """Delivery failed for a reason that may pass: retry later."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed for good: mark the notification failed."""


def bucket_link_url(bucket: Bucket) -> str:
    """Return the absolute link that opens a bucket (``/b/<token>/``)."""
    return settings.SITE_URL + reverse("sharing:bucket_link", args=[bucket.link_token])


def share_mail_subject(*, share, language, exam_count=None) -> str:
    """Return the subject of a share e-mail in the given language."""
    with translation.override(language):
        count = share.studies.count() if exam_count is None else exam_count
        if count == 1:
            subject = _("%(sender)s shared an exam with you")
        else:
            subject = ngettext(
                "%(sender)s shared %(count)d exam with you",
                "%(sender)s shared %(count)d exams with you",
                count,
            )
        subject = subject % {"sender": share.sender.display_name, "count": count}
        if share.urgent:
            subject = _("Urgent: %(subject)s") % {"subject": subject}
    return " ".join(subject.split())


def bucket_locked_mail_subject(*, language) -> str:
    """Return the subject of the alert about a locked bucket, in the language."""
    with translation.override(language):
        return str(_("A shared exam was locked after too many wrong codes"))


def share_mail_studies(share):
    """Return the share's studies in the order its mails list them."""
    return list(share.studies.select_related("patient").order_by("study_date", "id"))


def _exam_lines(bucket, *, studies=None, pseudonyms=None):
    share = bucket.share
    if share.anonymize and pseudonyms is None:
        pseudonyms = list(Pseudonym.objects.filter(bucket=bucket))
    pseudonyms = {p.patient_id: p for p in pseudonyms or ()}
    exams = []
    if studies is None:
        studies = share_mail_studies(share)
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


def share_mail_context(
    *, bucket: Bucket, language: str, studies=None, pseudonyms=None
) -> dict:
    """Return what every share e-mail of a bucket says, in the language, but the
    greeting and the link (JSON-safe: it is stored on the Notification row).

    ``studies`` (share_mail_studies) and the bucket's ``pseudonyms`` may be given
    when the caller read them for several buckets at once.
    """
    share = bucket.share
    with translation.override(language):
        if bucket.recipient_group_id:
            via = bucket.recipient_group.name
        elif bucket.recipient_department_id:
            via = bucket.recipient_department.name
        else:
            via = ""
        exams = _exam_lines(bucket, studies=studies, pseudonyms=pseudonyms)
        return {
            "recipient_name": "",
            "sender_name": share.sender.display_name,
            "department_name": share.source_department.name,
            "exams": exams,
            "exam_count": len(exams),
            "message": share.message.strip(),
            "require_otp": bucket.require_otp,
            "via": via,
            "urgent": share.urgent,
            "language_code": language,
        }


def render_share_mail(notification: Notification) -> tuple[str, str, str]:
    """Return (subject, text, html) of a share e-mail, in the share's language.

    Everything but the link comes from the row (``mail_context``, ``subject``); a
    row queued before rows kept their context is built from the share here.
    """
    bucket = notification.bucket
    language = notification.language or bucket.share.language
    context = notification.mail_context
    if context is None:
        context = share_mail_context(bucket=bucket, language=language)
        if notification.user_id:
            context["recipient_name"] = notification.user.display_name
    subject = notification.subject or share_mail_subject(
        share=bucket.share, language=language, exam_count=context["exam_count"]
    )
    name, link = context.get("recipient_name", ""), bucket_link_url(bucket)
    key = {**context, "recipient_name": bool(name)}
    key = json.dumps(key, sort_keys=True, ensure_ascii=False)
    if MARK in key or MARK in name:  # text that could pass for a mark: no short cut
        return subject, *_render_share_bodies(language, {**context, "link": link})
    text, html = _share_bodies(language, key)
    return (
        subject,
        text.replace(NAME_MARK, name).replace(LINK_MARK, link),
        html.replace(NAME_MARK, escape(name)).replace(LINK_MARK, escape(link)),
    )


# The mails of a share differ by the greeting's name and the link only: a worker
# renders a share's two bodies once with these marks in their place (escaped in
# the HTML as the templates' autoescaping would).
MARK = "\ue000"  # of Unicode's private use area: no text of ours has it
NAME_MARK = f"{MARK}recipient_name{MARK}"
LINK_MARK = f"{MARK}link{MARK}"


@functools.lru_cache(maxsize=64)
def _share_bodies(language, key):
    context = json.loads(key)
    context["recipient_name"] = NAME_MARK if context.get("recipient_name") else ""
    return _render_share_bodies(language, {**context, "link": LINK_MARK})


def _render_share_bodies(language, context):
    with translation.override(language):
        text = render_to_string("sharing/email/share_body.txt", context)
        html = render_to_string("sharing/email/share_body.html", context)
    return text, html


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
    """Claim a notification for sending; None when someone else holds it.

    The conditional update is the guard against two senders at once: it takes a
    pending row, or a row in "sending" whose lease has expired (its worker died),
    and leases it for ``NOTIFICATION_LEASE`` seconds. It returns the row and its
    bucket's link secret in the same statement (``UPDATE … RETURNING``).
    """
    db = connections[DEFAULT_DB_ALIAS]
    now = timezone.now()
    params = [
        Notification.Status.SENDING,
        db.ops.adapt_datetimefield_value(now + lease()),
        notification_id,
        Notification.Status.PENDING,
        Notification.Status.SENDING,
        db.ops.adapt_datetimefield_value(now),
    ]
    sql, converters = _claim_statement(db)

    def claim():
        with db.cursor() as cursor:
            cursor.execute(_asynchronous(db, sql), params)
            return cursor.fetchone()

    row = _with_database_retries(db, claim)
    if row is None:
        return None
    # The row as a queryset would load it (Notification.objects.raw() does the
    # same at several times the cost).
    *values, link_secret = row
    for index, column, functions in converters:
        for function in functions:
            values[index] = function(values[index], column, db)
    notification = Notification.from_db(db.alias, _NOTIFICATION_ATTNAMES, values)
    if notification.kind == Notification.Kind.SHARE and notification.bucket_id:
        # The bucket as far as the mail needs it; any other field loads if asked.
        notification.bucket = Bucket.from_db(
            db.alias, ["id", "link_secret"], [notification.bucket_id, link_secret]
        )
    return notification


_NOTIFICATION_ATTNAMES = [f.attname for f in Notification._meta.concrete_fields]
_claim_statements = {}


def _claim_statement(db):
    """Return the claim's SQL and the converters of its columns, made once."""
    key = (db.alias, db.vendor)
    if key not in _claim_statements:
        quote = db.ops.quote_name
        table = quote(Notification._meta.db_table)
        buckets = quote(Bucket._meta.db_table)
        fields = Notification._meta.concrete_fields
        columns = ", ".join(f"{table}.{quote(field.column)}" for field in fields)
        # Identifiers from the models' meta only; every value is a parameter.
        sql = (
            f"UPDATE {table} SET status = %s, attempts = attempts + 1, "  # noqa: S608
            f"leased_until = %s "
            f"WHERE id = %s AND (status = %s OR (status = %s AND leased_until < %s)) "
            f"RETURNING {columns}, (SELECT link_secret FROM {buckets} "
            f"WHERE {buckets}.id = {table}.bucket_id)"
        )
        converters = []
        for index, field in enumerate(fields):
            column = field.cached_col
            functions = db.ops.get_db_converters(column)
            functions += column.get_db_converters(db)
            if functions:
                converters.append((index, column, functions))
        _claim_statements[key] = sql, converters
    return _claim_statements[key]


def lease() -> datetime.timedelta:
    """Return how long a claim holds a row."""
    return datetime.timedelta(seconds=settings.NOTIFICATION_LEASE)


def notification_send(*, notification: Notification) -> None:
    """Send a claimed notification and mark it sent; raise a DeliveryError if not."""
    if notification.channel == Notification.Channel.SMS:
        provider_id = _send_otp_sms(notification)
    else:
        provider_id = _send_email(notification)
    # The message is out: losing this update would send it again after the lease,
    # so ride out a dropped database connection here rather than give up.
    _settle(
        notification,
        status=Notification.Status.SENT,
        provider_id=provider_id[:100],
        sent_at=timezone.now(),
    )


def notification_release(
    *, notification: Notification, error: str, countdown: float
) -> None:
    """Put a claimed notification back to pending, held until its retry is due.

    The lease then covers the scheduled retry: the relay re-queues the row only if
    that retry never comes (a broker restart lost it).
    """
    held_until = timezone.now() + datetime.timedelta(
        seconds=countdown + settings.NOTIFICATION_RELAY_MIN_AGE
    )
    _settle(
        notification,
        status=Notification.Status.PENDING,
        leased_until=held_until,
        error=error[:2000],
    )


def notification_mark_failed(*, notification: Notification, error: str) -> None:
    """Mark a claimed notification failed for good, keeping the error for admins."""
    _settle(notification, status=Notification.Status.FAILED, error=error[:2000])
    logger.warning(
        "Notification %s (%s) failed: %s", notification.pk, notification.kind, error
    )


DATABASE_RETRY_SECONDS = 15.0


def _settle(
    notification, *, status, leased_until=None, error="", provider_id="", sent_at=None
):
    """Move a claimed row on from "sending" in one statement (a no-op otherwise)."""
    db = connections[DEFAULT_DB_ALIAS]
    table = db.ops.quote_name(Notification._meta.db_table)
    # Identifiers from the model's meta only; every value is a parameter.
    sql = (
        f"UPDATE {table} SET status = %s, leased_until = %s, error = %s, "  # noqa: S608
        f"provider_id = %s, sent_at = %s WHERE id = %s AND status = %s"
    )
    params = [
        status,
        db.ops.adapt_datetimefield_value(leased_until),
        error,
        provider_id,
        db.ops.adapt_datetimefield_value(sent_at),
        notification.pk,
        Notification.Status.SENDING,
    ]

    def write():
        with db.cursor() as cursor:
            cursor.execute(_asynchronous(db, sql), params)

    _with_database_retries(db, write)


def _asynchronous(db, sql):
    """Return the outbox statement ``sql`` as a commit that does not wait for disk.

    On PostgreSQL the statement runs as its own transaction, whose commit returns
    before its WAL is flushed (other sessions see it at once, so the claim still
    guards against two senders). Only a crash of the database server itself can
    undo the last fraction of a second of claims and "sent" marks: those messages
    are sent again, never lost. Inside a caller's transaction it is left as it is.
    """
    if db.vendor != "postgresql" or db.in_atomic_block:
        return sql
    # One simple query of two statements is one implicit transaction: the
    # setting holds for the update alone, at the cost of no round trip.
    return "SET LOCAL synchronous_commit TO OFF; " + sql


def _with_database_retries(db, write):
    """Run ``write``; on a lost database connection reconnect and run it again.

    Every write here is a conditional update, so running it twice is harmless.
    """
    deadline = time.monotonic() + DATABASE_RETRY_SECONDS
    delay = 0.1
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline or db.in_atomic_block:
                raise
            logger.warning("Database connection lost; reconnecting", exc_info=True)
            db.close()
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


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


class _SmtpConnections(threading.local):
    """One open SMTP connection per worker thread, reused from mail to mail."""

    backend = None
    key = None


_smtp = _SmtpConnections()


def _smtp_key():
    return (
        settings.EMAIL_BACKEND,
        settings.EMAIL_HOST,
        settings.EMAIL_PORT,
        settings.EMAIL_HOST_USER,
        settings.EMAIL_USE_TLS,
        settings.EMAIL_USE_SSL,
    )


def close_smtp_connection():
    """Close this thread's reused SMTP connection, if any."""
    backend, _smtp.backend, _smtp.key = _smtp.backend, None, None
    if backend is not None:
        try:
            backend.close()
        except Exception:  # noqa: BLE001 - a dead connection may fail to close
            if backend.connection is not None:
                backend.connection.close()
            backend.connection = None


def _send_message(message):
    """Send one e-mail on this thread's SMTP connection, opened once and reused.

    A reused connection the server has dropped meanwhile (idle timeout, restart)
    is replaced once at once; other backends (file, locmem) get a fresh instance.
    """
    if settings.EMAIL_BACKEND != SMTP_BACKEND:
        message.send()
        return
    key = _smtp_key()
    if _smtp.key != key:
        close_smtp_connection()
    reused = _smtp.backend is not None and _smtp.backend.connection is not None
    if _smtp.backend is None:
        _smtp.backend, _smtp.key = get_connection(), key
    # The bytes and the envelope Django's backend would send, built faster.
    sender, recipients = mime.envelope(message)
    raw = mime.message_bytes(message)
    try:
        _smtp.backend.open()
        _smtp.backend.connection.sendmail(sender, recipients, raw)
    except smtplib.SMTPServerDisconnected:
        close_smtp_connection()
        if not reused:
            raise
        _smtp.backend, _smtp.key = get_connection(), key
        _smtp.backend.open()
        _smtp.backend.connection.sendmail(sender, recipients, raw)
    except (smtplib.SMTPException, OSError) as exc:
        if not isinstance(exc, smtplib.SMTPResponseException):
            # The connection's state is unknown after a network error.
            close_smtp_connection()
        raise


def _render_email(notification):
    if notification.kind == Notification.Kind.SHARE:
        return render_share_mail(notification)
    if notification.kind == Notification.Kind.BUCKET_LOCKED:
        return render_bucket_locked_mail(notification)
    raise PermanentDeliveryError(f"No e-mail for kind {notification.kind!r}")


def notification_message_id(notification: Notification) -> str:
    """Return the notification's Message-ID, the same on every try.

    Delivery is at least once: a receiver can recognise a mail sent twice by it.
    """
    digest = salted_hmac(
        "sharing.outbox.message-id", str(notification.pk), algorithm="sha256"
    ).hexdigest()[:16]
    host = urlsplit(settings.SITE_URL).hostname or "pacsshare.local"
    return f"<{digest}.notification-{notification.pk}@{host}>"


def _send_email(notification):
    subject, text, html = _render_email(notification)
    message_id = notification_message_id(notification)
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
        _send_message(message)
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
