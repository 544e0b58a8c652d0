"""Business actions on shares and buckets."""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from recipients.entries import KINDS
from recipients.models import Department, User, UserGroup
from recipients.services import favorites_add_many
from studies.models import Study

from ..audit.record import audit_record
from ..models import AuditEvent, Bucket, Label, Pseudonym, SenderPreferences, Share
from ..outbox.queue import notifications_queue_for_buckets


@dataclass(frozen=True)
class ShareRecipient:
    """One recipient as the wizard chose it, with its per-recipient options."""

    kind: str  # "user", "group" or "department"
    pk: int
    require_otp: bool
    send_mail: bool
    star: bool = False
    # Whether the row offered the option at all (a mobile, an e-mail to use):
    # only an offered option is the sender's choice to remember (rule 3).
    otp_available: bool = True
    mail_available: bool = True

    @property
    def key(self):
        return f"{self.kind}:{self.pk}"


_RECIPIENT_MODELS = {"user": User, "group": UserGroup, "department": Department}
_RECIPIENT_FIELDS = {
    "user": "recipient_user",
    "group": "recipient_group",
    "department": "recipient_department",
}


def _buckets_build(*, share, recipients) -> list[Bucket]:
    """Return one unsaved bucket per recipient, each with a fresh link secret.

    The recipients are read with one query per kind, whatever their number; an
    unknown (or, for a user, inactive) recipient raises its model's DoesNotExist.
    """
    wanted = {}
    for recipient in recipients:
        if recipient.kind not in KINDS:
            raise ValueError(f"Unknown recipient kind {recipient.kind!r}")
        wanted.setdefault(recipient.kind, set()).add(recipient.pk)
    found = {}
    for kind, pks in wanted.items():
        queryset = _RECIPIENT_MODELS[kind].objects.filter(pk__in=pks)
        if kind == "user":
            queryset = queryset.filter(is_active=True)
        found[kind] = queryset.in_bulk()
    buckets = []
    for recipient in recipients:
        target = found[recipient.kind].get(recipient.pk)
        if target is None:
            raise _RECIPIENT_MODELS[recipient.kind].DoesNotExist(
                f"No {recipient.kind} {recipient.pk} to share with."
            )
        bucket = Bucket(
            share=share,
            require_otp=recipient.require_otp,
            send_mail=recipient.send_mail,
            **{_RECIPIENT_FIELDS[recipient.kind]: target},
        )
        bucket.set_link_secret()
        buckets.append(bucket)
    return buckets


def _sender_preferences_update(*, sender, recipients):
    """Remember the last choice of each option among the rows that offered it; an
    option forced off (no mobile, no e-mail) is no choice and changes nothing."""
    defaults = {}
    for recipient in recipients:
        if recipient.otp_available:
            defaults["require_otp"] = recipient.require_otp
        if recipient.mail_available:
            defaults["send_mail"] = recipient.send_mail
    if defaults:
        SenderPreferences.objects.update_or_create(user=sender, defaults=defaults)


def share_create(
    *,
    sender: User,
    studies: Sequence[Study],
    recipients: Sequence[ShareRecipient],
    access: str,
    reason: str,
    language: str,
    valid_until: datetime.date | None,
    patient_agreed: bool,
    label: Label | None,
    label_scope: str,
    urgent: bool,
    anonymize: bool,
    allow_further_sharing: bool,
    message: str,
    parent_bucket: Bucket | None = None,
    wizard_run: str = "",
    request=None,
) -> Share:
    """Share studies: the share, one bucket per recipient, pseudonyms, audit, outbox.

    The wizard's forms have checked every rule; this keeps the invariants that
    must never break whoever calls it, and does everything in one transaction.
    `request`, when given, only supplies the audit event's IP address and agent.
    `wizard_run` names the wizard run that makes the share: a run makes one share
    at most, so a second call for the same run returns the share already made.
    """
    studies = list(studies)
    departments = {study.department_id for study in studies}
    if not studies or len(departments) != 1:
        raise ValueError("Share one or more studies of one source department.")
    if not recipients:
        raise ValueError("Share with at least one recipient.")
    if not patient_agreed:
        raise ValueError("Nothing is shared without the patient's agreement.")
    if not reason.strip():
        raise ValueError("A reason for sharing is mandatory.")
    if parent_bucket is not None and parent_bucket.share.anonymize:
        anonymize = True
    if valid_until is None and studies[0].department.max_validity_days is not None:
        raise ValueError("This department allows no unlimited access.")

    fields = {
        "sender": sender,
        "studies": studies,
        "recipients": recipients,
        "access": access,
        "reason": reason,
        "language": language,
        "valid_until": valid_until,
        "label": label,
        "label_scope": label_scope,
        "urgent": urgent,
        "anonymize": anonymize,
        "allow_further_sharing": allow_further_sharing,
        "message": message,
        "parent_bucket": parent_bucket,
        "wizard_run": wizard_run,
        "request": request,
    }
    if not wizard_run:
        return _share_create(**fields)
    made = Share.objects.filter(sender=sender, wizard_run=wizard_run).first()
    if made is not None:
        return made
    try:
        return _share_create(**fields)
    except IntegrityError:
        # A concurrent POST of the same run made it first (a double click): the
        # unique constraint on (sender, wizard_run) refused the second.
        made = Share.objects.filter(sender=sender, wizard_run=wizard_run).first()
        if made is None:
            raise
        return made


def _share_create(
    *,
    sender,
    studies,
    recipients,
    access,
    reason,
    language,
    valid_until,
    label,
    label_scope,
    urgent,
    anonymize,
    allow_further_sharing,
    message,
    parent_bucket,
    wizard_run,
    request,
) -> Share:
    with transaction.atomic():
        share = Share.objects.create(
            sender=sender,
            source_department=studies[0].department,
            access=access,
            reason=reason,
            language=language,
            valid_until=valid_until,
            patient_agreed_at=timezone.now(),
            label=label,
            label_scope=label_scope if label is not None else "",
            urgent=urgent,
            anonymize=anonymize,
            allow_further_sharing=allow_further_sharing,
            message=message,
            parent_bucket=parent_bucket,
            wizard_run=wizard_run,
        )
        Share.studies.through.objects.bulk_create(
            Share.studies.through(share=share, study=study)
            for study in {study.pk: study for study in studies}.values()
        )
        # One INSERT for every bucket (their primary keys come back with it).
        buckets = Bucket.objects.bulk_create(
            _buckets_build(share=share, recipients=recipients)
        )
        if anonymize:
            patients = {study.patient_id: study.patient for study in studies}
            Pseudonym.objects.bulk_create(
                Pseudonym.objects.build(bucket=bucket, patient=patient)
                for bucket in buckets
                for patient in patients.values()
            )
        audit_record(
            action=AuditEvent.Action.SHARE_CREATED,
            actor=sender,
            request=request,
            share=share,
            studies=studies,
            details={
                # The reason is kept here and on the share only (rule 6).
                "reason": reason,
                "recipients": [r.key for r in recipients],
                "buckets": [bucket.pk for bucket in buckets],
                "access": access,
                "valid_until": valid_until.isoformat() if valid_until else None,
                "anonymize": anonymize,
                "allow_further_sharing": allow_further_sharing,
                "urgent": urgent,
                "parent_bucket": parent_bucket.pk if parent_bucket else None,
            },
        )
        _sender_preferences_update(sender=sender, recipients=recipients)
        starred = [r.key for r in recipients if r.star]
        if starred:
            favorites_add_many(owner=sender, keys=starred)
        notifications_queue_for_buckets(buckets=buckets)
    return share
