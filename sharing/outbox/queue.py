"""The outbox's queueing side: called inside the transaction of what causes a message.

Every message is a ``Notification`` row created in the caller's transaction; the
``send_notification`` task (sharing/outbox/tasks.py) is queued with
``transaction.on_commit``. Rows never hold secrets: a share mail's content is
stored without its link, which is derived from the bucket when the mail is
rendered, and an OTP code is made by the task when it sends.
"""

import logging

from django.db import transaction
from django.utils import timezone

from recipients.models import Membership, User

from ..models import Bucket, Notification, OTPDevice, Pseudonym
from .delivery import (
    bucket_locked_mail_subject,
    lease,
    share_mail_context,
    share_mail_studies,
    share_mail_subject,
)
from .tasks import notifications_fan_out, send_notification

logger = logging.getLogger(__name__)


def broker_lease():
    """Return the lease of a row whose task goes to the broker at commit.

    Until it runs out the relay leaves the row to that task; if the broker
    refuses the task, the lease is dropped and the relay takes the row at once.
    """
    return timezone.now() + lease()


def _first_per_address(candidates) -> list[User]:
    """Keep the active users with an address, the first one of each address."""
    users, seen = [], set()
    for user in candidates:
        address = (user.email or "").strip().lower()
        if not user.is_active or not address or address in seen:
            continue
        seen.add(address)
        users.append(user)
    return users


def bucket_mail_recipients(*, bucket: Bucket) -> list[User]:
    """Return the users who get the share e-mail of a bucket, one per address."""
    return buckets_mail_recipients(buckets=[bucket])[0]


def buckets_mail_recipients(*, buckets) -> list[list[User]]:
    """Return, bucket by bucket, the users who get its share e-mail, one per address.

    A fixed number of queries however many buckets: one for the members of all
    the group buckets, one for those of all the department buckets.
    """
    buckets = list(buckets)
    mailed = [bucket for bucket in buckets if bucket.send_mail]
    group_ids = {b.recipient_group_id for b in mailed if b.recipient_group_id}
    department_ids = {
        b.recipient_department_id for b in mailed if b.recipient_department_id
    }
    members = {("group", pk): [] for pk in group_ids}
    members.update({("department", pk): [] for pk in department_ids})
    if group_ids:
        through = User.user_groups.through
        rows = (
            through.objects.filter(usergroup_id__in=group_ids)
            .select_related("user")
            .order_by("user__last_name", "user__id")
        )
        for row in rows:
            members[("group", row.usergroup_id)].append(row.user)
    if department_ids:
        rows = (
            Membership.objects.filter(department_id__in=department_ids)
            .select_related("user")
            .order_by("user__last_name", "user__id")
        )
        for row in rows:
            members[("department", row.department_id)].append(row.user)
    recipients = []
    for bucket in buckets:
        if not bucket.send_mail:
            candidates = []
        elif bucket.recipient_user_id:
            candidates = [bucket.recipient_user]
        elif bucket.recipient_group_id:
            candidates = members[("group", bucket.recipient_group_id)]
        else:
            candidates = members[("department", bucket.recipient_department_id)]
        recipients.append(_first_per_address(candidates))
    return recipients


def notifications_queue_for_bucket(*, bucket: Bucket) -> list[Notification]:
    """Create one share e-mail per recipient address of a bucket; send after commit."""
    return notifications_queue_for_buckets(buckets=[bucket])


def notifications_queue_for_buckets(*, buckets) -> list[Notification]:
    """Create the share e-mails of buckets (one per recipient address of each) in
    one INSERT; each is sent after the caller's transaction commits.

    The mail's subject and content but its link are built here, so the worker
    sends it without loading the share (sharing/outbox/delivery.py). The studies
    are read once per share and the pseudonyms once for all anonymized buckets:
    the cost does not grow with the recipients.
    """
    buckets = list(buckets)
    recipients = buckets_mail_recipients(buckets=buckets)
    anonymized = [
        b.pk
        for b, users in zip(buckets, recipients, strict=True)
        if users and b.share.anonymize
    ]
    pseudonyms = {pk: [] for pk in anonymized}
    if anonymized:
        for pseudonym in Pseudonym.objects.filter(bucket_id__in=anonymized):
            pseudonyms[pseudonym.bucket_id].append(pseudonym)
    studies, subjects = {}, {}
    rows = []
    for bucket, users in zip(buckets, recipients, strict=True):
        if not users:
            continue
        share = bucket.share
        if share.pk not in studies:
            studies[share.pk] = share_mail_studies(share)
        context = share_mail_context(
            bucket=bucket,
            language=share.language,
            studies=studies[share.pk],
            pseudonyms=pseudonyms.get(bucket.pk),
        )
        if share.pk not in subjects:
            subjects[share.pk] = share_mail_subject(
                share=share, language=share.language, exam_count=context["exam_count"]
            )
        for user in users:
            rows.append(
                Notification(
                    leased_until=broker_lease(),
                    channel=Notification.Channel.EMAIL,
                    kind=Notification.Kind.SHARE,
                    bucket=bucket,
                    user=user,
                    to_address=user.email.strip(),
                    language=share.language,
                    subject=subjects[share.pk],
                    mail_context={**context, "recipient_name": user.display_name},
                )
            )
    if not rows:
        return []
    created = Notification.objects.bulk_create(rows)
    notifications_enqueue(created)
    return created


def notification_queue_otp(*, device: OTPDevice) -> Notification:
    """Queue an SMS with a fresh one-time password for the device's user and bucket.

    The code is generated by the task when it sends, never here.
    """
    user = device.user
    if not user.mobile:
        raise ValueError("The recipient has no registered mobile number.")
    notification = Notification.objects.create(
        leased_until=broker_lease(),
        channel=Notification.Channel.SMS,
        kind=Notification.Kind.OTP,
        bucket=device.bucket,
        user=user,
        to_address=user.mobile,
        language=user.language,
    )
    notification_enqueue(notification)
    return notification


def notification_queue_bucket_locked(*, bucket: Bucket) -> list[Notification]:
    """Mail the admins of the sending department that a bucket has been locked."""
    share = bucket.share
    admins = User.objects.filter(
        memberships__department_id=share.source_department_id,
        memberships__is_admin=True,
        is_active=True,
    ).order_by("id")
    created, seen = [], set()
    for admin in admins:
        address = (admin.email or "").strip()
        if not address or address.lower() in seen:
            continue
        seen.add(address.lower())
        subject = bucket_locked_mail_subject(language=admin.language)
        notification = Notification.objects.create(
            leased_until=broker_lease(),
            channel=Notification.Channel.EMAIL,
            kind=Notification.Kind.BUCKET_LOCKED,
            bucket=bucket,
            user=admin,
            to_address=address,
            language=admin.language,
            subject=subject,
        )
        notification_enqueue(notification)
        created.append(notification)
    return created


def notification_enqueue(notification):
    """Queue the notification's task when the caller's transaction commits."""
    notification_id = notification.pk
    transaction.on_commit(lambda: notification_publish(notification_id=notification_id))


def notifications_enqueue(notifications):
    """Queue the tasks of several notifications when the transaction commits.

    One is published as it is; several go to the broker as one task that the
    worker fans out (notifications_fan_out): a publish costs the request about
    half a millisecond, fifty of them a share for fifty recipients as much as
    its whole creation. Until they run, each row keeps the broker's lease, so
    the relay takes it up if the fan-out is lost.
    """
    if len(notifications) == 1:
        notification_enqueue(notifications[0])
    elif notifications:
        ids = [notification.pk for notification in notifications]
        transaction.on_commit(lambda: notifications_publish(notification_ids=ids))


# Publishing waits this little for a broker that refuses: the caller is a request.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}


def notification_publish(*, notification_id: int) -> bool:
    """Hand the notification's task to the broker now; False if it refused.

    A refusal fails nothing: the row stays pending and the relay queues it again
    once the broker is back, so the page that caused the message still answers.
    """
    try:
        send_notification.apply_async(
            args=[notification_id], retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception as exc:  # noqa: BLE001 - any broker failure, whatever its type
        Notification.objects.filter(
            pk=notification_id, status=Notification.Status.PENDING
        ).update(leased_until=None)
        logger.warning(
            "Notification %s left pending: the broker refused its task (%s: %s)",
            notification_id,
            type(exc).__name__,
            exc,
        )
        return False
    return True


def notifications_publish(*, notification_ids) -> bool:
    """Hand one fan-out task for these notifications to the broker; False if it
    refused (the rows then stay pending for the relay, as with one)."""
    try:
        notifications_fan_out.apply_async(
            args=[list(notification_ids)],
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )
    except Exception as exc:  # noqa: BLE001 - any broker failure, whatever its type
        Notification.objects.filter(
            pk__in=notification_ids, status=Notification.Status.PENDING
        ).update(leased_until=None)
        logger.warning(
            "Notifications %s left pending: the broker refused its task (%s: %s)",
            ", ".join(str(pk) for pk in notification_ids),
            type(exc).__name__,
            exc,
        )
        return False
    return True
