import base64
import datetime
import secrets
import zoneinfo

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from django_otp.models import CooldownMixin, Device, ThrottlingMixin

from recipients.models import Department, Language, User, UserGroup
from studies.models import LeasedTask, Patient, Study, is_interrupted, is_stalled


def hash_secret(value):
    """Return the keyed digest under which a token or code is stored.

    An HMAC under SECRET_KEY, not a bare hash: a six-digit code's bare hash is
    reversed in milliseconds by anyone who reads the database.
    """
    return salted_hmac("pacsshare.secret", str(value), algorithm="sha256").hexdigest()


class Access(models.TextChoices):
    IMAGES_ONLY = "images", _("Images only")
    IMAGES_READ = "read", _("Images and read access to the report")
    IMAGES_WRITE = "write", _("Images and write access to the report")


# Broader access ranks higher (rule 19, re-share limits).
ACCESS_RANK = {Access.IMAGES_ONLY: 0, Access.IMAGES_READ: 1, Access.IMAGES_WRITE: 2}


class Label(models.Model):
    """A label a department can attach to what it shares."""

    department = models.ForeignKey(
        Department, on_delete=models.CASCADE, related_name="labels"
    )
    name = models.CharField(_("name"), max_length=60)
    color = models.CharField(_("colour"), max_length=7, default="#2f6f8f")

    class Meta:
        ordering = ["name"]
        verbose_name = _("label")
        verbose_name_plural = _("labels")
        constraints = [
            models.UniqueConstraint(
                fields=["department", "name"], name="label_unique_name"
            )
        ]

    def __str__(self):
        return self.name


class Share(models.Model):
    """One completed share wizard: studies, parameters, and one bucket per recipient."""

    class LabelScope(models.TextChoices):
        USER = "user", _("For the user")
        GROUP = "group", _("For the group")

    sender = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="shares_sent"
    )
    source_department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="shares"
    )
    studies = models.ManyToManyField(
        Study, related_name="shares", verbose_name=_("studies")
    )
    access = models.CharField(_("access"), max_length=8, choices=Access.choices)
    reason = models.TextField(_("reason for sharing"))
    language = models.CharField(_("language"), max_length=2, choices=Language.choices)
    valid_until = models.DateField(
        _("valid till"), null=True, blank=True, help_text=_("Empty: unlimited access.")
    )
    patient_agreed_at = models.DateTimeField(_("patient agreed at"))
    label = models.ForeignKey(
        Label, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("label")
    )
    label_scope = models.CharField(
        _("label for"), max_length=5, choices=LabelScope.choices, blank=True
    )
    urgent = models.BooleanField(_("urgent"), default=False)
    anonymize = models.BooleanField(_("anonymize"), default=False)
    allow_further_sharing = models.BooleanField(
        _("allow further sharing"), default=False
    )
    message = models.TextField(_("message"), blank=True, max_length=2000)
    parent_bucket = models.ForeignKey(
        "Bucket",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reshares",
        verbose_name=_("re-shared from"),
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    created_at = models.DateTimeField(_("shared on"), auto_now_add=True)
    # The wizard run that made the share: one share per run (rule 20).
    wizard_run = models.CharField(
        _("wizard run"), max_length=32, blank=True, default="", editable=False
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("share")
        verbose_name_plural = _("shares")
        indexes = [
            models.Index(fields=["source_department", "-created_at"]),
            # Status Forwarding walks the newest shares first and stops at a page.
            models.Index(fields=["-created_at", "-id"], name="share_newest_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "wizard_run"],
                condition=~models.Q(wizard_run=""),
                name="share_unique_sender_wizard_run",
            )
        ]

    def __str__(self):
        return f"Share #{self.pk} by {self.sender}"

    @property
    def expires_at(self):
        """Return the end of the valid-till day in the department's zone, or None."""
        if self.valid_until is None:
            return None
        tz = zoneinfo.ZoneInfo(self.source_department.time_zone)
        next_day = self.valid_until + datetime.timedelta(days=1)
        return datetime.datetime.combine(next_day, datetime.time.min, tzinfo=tz)


class Bucket(models.Model):
    """What one recipient (a user, a group or a department) received from a share."""

    share = models.ForeignKey(Share, on_delete=models.CASCADE, related_name="buckets")
    recipient_user = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="buckets"
    )
    recipient_group = models.ForeignKey(
        UserGroup,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="buckets",
    )
    recipient_department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="received_buckets",
    )
    # A random secret; the link token is an HMAC of it under SECRET_KEY, so the
    # database alone never yields a working link. Lookup goes by token_hash.
    link_secret = models.CharField(max_length=64, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    require_otp = models.BooleanField(_("two-factor authentication"), default=True)
    send_mail = models.BooleanField(_("send mail"), default=True)
    failed_otp_attempts = models.PositiveSmallIntegerField(_("failed codes"), default=0)
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    MAX_FAILED_OTP = 5

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("bucket")
        verbose_name_plural = _("buckets")
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(
                        recipient_user__isnull=False,
                        recipient_group__isnull=True,
                        recipient_department__isnull=True,
                    )
                    | Q(
                        recipient_user__isnull=True,
                        recipient_group__isnull=False,
                        recipient_department__isnull=True,
                    )
                    | Q(
                        recipient_user__isnull=True,
                        recipient_group__isnull=True,
                        recipient_department__isnull=False,
                    )
                ),
                name="bucket_exactly_one_recipient",
            ),
            models.CheckConstraint(
                condition=Q(failed_otp_attempts__lte=5), name="bucket_failed_otp_max_5"
            ),
        ]

    def __str__(self):
        return f"Bucket #{self.pk} → {self.recipient}"

    @property
    def recipient(self):
        return self.recipient_user or self.recipient_group or self.recipient_department

    @property
    def is_locked(self):
        return self.locked_at is not None

    @property
    def is_revoked(self):
        return self.revoked_at is not None or self.share.revoked_at is not None

    @property
    def is_expired(self):
        expires_at = self.share.expires_at
        return expires_at is not None and timezone.now() >= expires_at

    def set_link_secret(self):
        """Give the bucket a fresh link; return its token (never stored)."""
        self.link_secret = secrets.token_hex(32)
        token = self.link_token
        self.token_hash = hash_secret(token)
        return token

    @property
    def link_token(self):
        """Return the link token: 256 bits, derived, never stored in clear."""
        digest = salted_hmac(
            "pacsshare.bucket-link", self.link_secret, algorithm="sha256"
        ).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class BucketOpening(models.Model):
    """When a user first opened a bucket's study (the "Message" label turns green)."""

    bucket = models.ForeignKey(
        Bucket, on_delete=models.CASCADE, related_name="openings"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    first_opened_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("bucket opening")
        verbose_name_plural = _("bucket openings")
        constraints = [
            models.UniqueConstraint(fields=["bucket", "user"], name="opening_unique")
        ]

    def __str__(self):
        return f"{self.bucket} opened by {self.user}"


class BucketUnlock(models.Model):
    """One unlock of a locked bucket: who, when, and how many codes had failed."""

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="unlocks")
    unlocked_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    unlocked_at = models.DateTimeField(default=timezone.now)
    failed_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-unlocked_at"]
        verbose_name = _("unlock")
        verbose_name_plural = _("unlocks")

    def __str__(self):
        return f"{self.bucket} unlocked by {self.unlocked_by}"


class PseudonymManager(models.Manager):
    def build(self, *, bucket, patient):
        """Return a new, unsaved pseudonym of a patient for a bucket."""
        return self.model(
            bucket=bucket,
            patient=patient,
            # A number carries no hint of the name (rule 12).
            given_name=str(100000 + secrets.randbelow(900000)),
            family_name="Anonymous",
            pseudo_patient_id=f"ANON-{secrets.token_hex(8).upper()}",
        )

    def for_patient(self, *, bucket, patient):
        """Return the bucket's pseudonym of a patient, creating it the first time."""
        new = self.build(bucket=bucket, patient=patient)
        pseudonym, _created = self.get_or_create(
            bucket=bucket,
            patient=patient,
            defaults={
                "given_name": new.given_name,
                "family_name": new.family_name,
                "pseudo_patient_id": new.pseudo_patient_id,
            },
        )
        return pseudonym


class Pseudonym(models.Model):
    """The name an anonymized bucket shows for a patient."""

    bucket = models.ForeignKey(
        Bucket, on_delete=models.CASCADE, related_name="pseudonyms"
    )
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    given_name = models.CharField(max_length=20)
    family_name = models.CharField(max_length=20, default="Anonymous")
    pseudo_patient_id = models.CharField(max_length=64)

    objects = PseudonymManager()

    class Meta:
        verbose_name = _("pseudonym")
        verbose_name_plural = _("pseudonyms")
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "patient"], name="pseudonym_unique"
            )
        ]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self):
        return f"{self.given_name} {self.family_name}"

    @property
    def initials(self):
        return f"{self.given_name[0]}.{self.family_name[0]}."


class OTPDevice(ThrottlingMixin, CooldownMixin, Device):
    """A one-time password sent by SMS for one bucket and one user.

    Built on django-otp's Device with its throttling and cool-down mixins; unlike
    SideChannelDevice it keeps only a hash of the current code.
    """

    bucket = models.ForeignKey(
        Bucket, on_delete=models.CASCADE, related_name="otp_devices"
    )
    token_hash = models.CharField(max_length=64, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)

    COOLDOWN_SECONDS = 60

    class Meta(Device.Meta):
        verbose_name = _("OTP device")
        verbose_name_plural = _("OTP devices")
        constraints = [
            models.UniqueConstraint(fields=["bucket", "user"], name="otp_device_unique")
        ]

    def __str__(self):
        return f"SMS code for {self.user} on bucket #{self.bucket_id}"

    def get_cooldown_duration(self):
        return self.COOLDOWN_SECONDS

    def get_throttle_factor(self):
        # The bucket's lock after five wrong codes is the throttle; no extra delay.
        return 0


class Notification(models.Model):
    """One message to send (the outbox); rendered and sent by a Celery task."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")

    class Kind(models.TextChoices):
        SHARE = "share", _("Share e-mail")
        OTP = "otp", _("One-time password")
        BUCKET_LOCKED = "locked", _("Bucket locked alert")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    channel = models.CharField(_("channel"), max_length=5, choices=Channel.choices)
    kind = models.CharField(_("kind"), max_length=6, choices=Kind.choices)
    bucket = models.ForeignKey(
        Bucket,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    user = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_address = models.CharField(_("to"), max_length=254)
    language = models.CharField(_("language"), max_length=2, choices=Language.choices)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    # What a share mail says but its link, built in its language when the row is
    # queued, so the worker renders it without loading the share. Never a secret:
    # the link is derived from the bucket's secret only when the mail is sent.
    mail_context = models.JSONField(
        _("mail context"), null=True, blank=True, editable=False
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # The lease: until when the row is held by whoever claimed or queued it. A row
    # in "sending" past it was abandoned (a worker died) and may be claimed again;
    # a "pending" row past it (or never leased, and a few seconds old) is re-queued
    # by the relay (sharing/outbox/relay.py).
    leased_until = models.DateTimeField(_("leased until"), null=True, blank=True)
    provider_id = models.CharField(_("provider id"), max_length=100, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        # Not the address: this shows in admin lists and logs.
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_stalled(self):
        """Return True when a worker claimed the row and its lease ran out."""
        return (
            self.status == self.Status.SENDING
            and self.leased_until is not None
            and self.leased_until < timezone.now()
        )


class AuditEvent(models.Model):
    """An append-only record of who did what to which study, from where."""

    class Action(models.TextChoices):
        SHARE_CREATED = "share_created", _("share created")
        BUCKET_OPENED = "bucket_opened", _("bucket opened")
        ACCESS_REFUSED = "access_refused", _("access refused")
        OTP_SENT = "otp_sent", _("OTP sent")
        OTP_FAILED = "otp_failed", _("OTP failed")
        OTP_SUCCEEDED = "otp_succeeded", _("OTP succeeded")
        BUCKET_LOCKED = "bucket_locked", _("bucket locked")
        BUCKET_UNLOCKED = "bucket_unlocked", _("bucket unlocked")
        REVOKED = "revoked", _("revoked")
        REPORT_READ = "report_read", _("report read")
        REPORT_EDITED = "report_edited", _("report edited")
        DOWNLOADED = "downloaded", _("downloaded")
        LOGIN_FAILED = "login_failed", _("login failed")
        DICOMWEB_RETRIEVED = "dicomweb_retrieved", _("retrieved over DICOMweb")
        SENT_TO_PACS = "sent_to_pacs", _("sent to PACS")

    created_at = models.DateTimeField(
        _("time (UTC)"), default=timezone.now, db_index=True
    )
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    department = models.ForeignKey(
        Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    share = models.ForeignKey(
        Share, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    bucket = models.ForeignKey(
        Bucket, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    study_uids = models.JSONField(_("study UIDs"), default=list, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [models.Index(fields=["department", "created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only.")


class PacsTransfer(LeasedTask):
    """One "Send to my PACS": a bucket's studies sent by C-STORE to a destination."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENDING = "sending", _("sending")
        DONE = "done", _("sent")
        PARTIAL = "partial", _("partly sent")
        FAILED = "failed", _("failed")

    bucket = models.ForeignKey(
        Bucket, on_delete=models.CASCADE, related_name="pacs_transfers"
    )
    user = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # The destination as it was when the transfer started.
    ae_title = models.CharField(_("AE title"), max_length=16)
    host = models.CharField(_("host"), max_length=255)
    port = models.PositiveIntegerField(_("port"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    total = models.PositiveIntegerField(_("instances"), default=0)
    sent = models.PositiveIntegerField(_("sent"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    error = models.CharField(_("error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    CLAIMED = Status.SENDING

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("PACS transfer")
        verbose_name_plural = _("PACS transfers")

    def __str__(self):
        return f"{self.bucket_id} → {self.ae_title}@{self.host}:{self.port}"

    @property
    def is_stalled(self):
        return is_stalled(self)

    @property
    def is_interrupted(self):
        return is_interrupted(self)


class SenderPreferences(models.Model):
    """The per-recipient options a sender used last: the wizard's next defaults."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, related_name="sender_preferences"
    )
    require_otp = models.BooleanField(default=True)
    send_mail = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("sender preferences")
        verbose_name_plural = _("sender preferences")

    def __str__(self):
        return f"Preferences of {self.user}"
