"""The outbox's relay: re-queue every row no worker is taking care of.

A row is leased whenever someone holds it: the broker (from the commit that
queued it), a worker (from its claim), or a scheduled retry. A row is left behind
by a broker that refused its task (pending, lease dropped) or lost it (pending,
lease expired), or by a worker that died or lost its database while sending
(sending, lease expired). Celery beat runs ``relay_notifications`` every
``NOTIFICATION_RELAY_PERIOD`` seconds; ``manage.py relay_notifications`` runs the
same sweep by hand or without a broker. A row is re-queued with a short lease of
its own, so a backlog is not queued again at every sweep while the worker works
through it; the claim in sharing/outbox/delivery.py still lets one sender only.
"""

import datetime
import logging
from dataclasses import dataclass

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import Notification
from .delivery import lease
from .queue import notification_publish

logger = logging.getLogger(__name__)

RELAY_BATCH = 1000


@dataclass
class RelayResult:
    requeued: int = 0
    refused: int = 0  # the broker refused: left for the next sweep


def notifications_needing_relay(*, now=None):
    """Return the rows the relay would re-queue now, oldest first."""
    now = now or timezone.now()
    settled = now - datetime.timedelta(seconds=settings.NOTIFICATION_RELAY_MIN_AGE)
    never_leased = Q(
        status=Notification.Status.PENDING,
        leased_until__isnull=True,
        created_at__lt=settled,
    )
    lease_expired = Q(
        status__in=[Notification.Status.PENDING, Notification.Status.SENDING],
        leased_until__lt=now,
    )
    return Notification.objects.filter(never_leased | lease_expired).order_by(
        "created_at", "id"
    )


def notifications_relay(*, now=None, batch=RELAY_BATCH) -> RelayResult:
    """Re-queue pending rows older than the minimum age and expired leases.

    Each row goes back to pending under a lease of the relay's before its task is
    published, so the next sweep leaves it to that task for a lease's length.
    """
    now = now or timezone.now()
    held = now + lease()
    result = RelayResult()
    while True:
        ids = list(
            notifications_needing_relay(now=now).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return result
        # Conditional, like a claim: a row a worker claimed meanwhile is left alone.
        notifications_needing_relay(now=now).filter(pk__in=ids).update(
            status=Notification.Status.PENDING, leased_until=held
        )
        leased = list(
            Notification.objects.filter(pk__in=ids, leased_until=held)
            .order_by("created_at", "id")
            .values_list("pk", flat=True)
        )
        for position, notification_id in enumerate(leased):
            if notification_publish(notification_id=notification_id):
                result.requeued += 1
                continue
            # The broker is down: give the rest back to the next sweep.
            unpublished = leased[position:]
            Notification.objects.filter(
                pk__in=unpublished,
                status=Notification.Status.PENDING,
                leased_until=held,
            ).update(leased_until=now)
            result.refused += len(unpublished)
            logger.warning(
                "Relay: broker unavailable, %d notifications wait for the next sweep",
                len(unpublished),
            )
            return result
        if len(ids) < batch:
            return result


@shared_task(name="sharing.relay_notifications", ignore_result=True)
def relay_notifications():
    """Run one relay sweep (Celery beat schedules it)."""
    result = notifications_relay()
    if result.requeued or result.refused:
        logger.info(
            "Relay: %d notifications re-queued, %d refused by the broker",
            result.requeued,
            result.refused,
        )
    return result.requeued
