"""The outbox's Celery task: a thin wrapper around sharing.outbox.delivery."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from ..models import Notification
from . import delivery

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="sharing.send_notification",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def send_notification(self, notification_id):
    """Send one queued notification once; retry transient errors with backoff.

    After ``NOTIFICATION_MAX_RETRIES`` retries the row is marked failed, as an
    admin sees it. Whatever this task leaves undone (its worker died, its retry
    was lost with the broker, its database went away) the relay re-queues once
    the row's lease has expired.
    """
    try:
        notification = delivery.notification_claim(notification_id=notification_id)
    except (OperationalError, InterfaceError):
        # Nothing was sent and the row is as it was: the relay re-queues it.
        logger.warning("Notification %s: database unavailable", notification_id)
        raise
    if notification is None:
        # Already sent, being sent, failed for good, or rolled back: nothing to do.
        return "skipped"
    try:
        delivery.notification_send(notification=notification)
    except delivery.TransientDeliveryError as exc:
        if self.request.retries >= settings.NOTIFICATION_MAX_RETRIES:
            delivery.notification_mark_failed(
                notification=notification,
                error=f"Gave up after {notification.attempts} attempts: {exc}",
            )
            return "failed"
        countdown = delivery.retry_delay(self.request.retries)
        delivery.notification_release(
            notification=notification, error=str(exc), countdown=countdown
        )
        logger.info(
            "Notification %s: transient error, retry in %.1f s",
            notification_id,
            countdown,
        )
        raise self.retry(
            countdown=countdown, max_retries=settings.NOTIFICATION_MAX_RETRIES
        ) from None
    except delivery.PermanentDeliveryError as exc:
        delivery.notification_mark_failed(notification=notification, error=str(exc))
        return "failed"
    except (OperationalError, InterfaceError):
        # The database went away around the send: leave the row to its lease, as
        # a dead worker would; the relay takes it up again.
        logger.warning(
            "Notification %s: database unavailable while sending", notification_id
        )
        raise
    except Exception as exc:
        logger.exception("Notification %s could not be sent", notification_id)
        delivery.notification_mark_failed(
            notification=notification, error=f"{type(exc).__name__}: {exc}"
        )
        return "failed"
    return "sent"


@shared_task(name="sharing.notifications_fan_out", acks_late=True, ignore_result=True)
def notifications_fan_out(notification_ids):
    """Publish each notification's own task (a share's mails came as one task).

    If the broker refuses one here, it and those after it stay pending with
    their lease dropped, so the relay takes them at its next sweep; one already
    sent is skipped by its own task's claim.
    """
    for index, notification_id in enumerate(notification_ids):
        try:
            send_notification.apply_async(args=[notification_id])
        except Exception as exc:  # noqa: BLE001 - any broker failure
            left = notification_ids[index:]
            Notification.objects.filter(
                pk__in=left, status=Notification.Status.PENDING
            ).update(leased_until=None)
            logger.warning(
                "Notifications %s left pending: the broker refused their tasks "
                "(%s: %s)",
                ", ".join(str(pk) for pk in left),
                type(exc).__name__,
                exc,
            )
            return
