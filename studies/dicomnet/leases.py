"""Leases of the long DICOM tasks: a "Bring in" (DicomWebImport) and a "Send to
my PACS" (PacsTransfer, in sharing), as the outbox leases its rows.

A row is leased (``leased_until``) whenever someone holds it: the broker from the
commit that queued it, a worker from its claim. The task claims the row with a
conditional update (pending, or claimed with an expired lease → claimed, leased
for ``DICOM_TASK_LEASE`` seconds, ``attempts`` + 1) and renews the lease at every
object it handles, each renewal conditional on its own claim (``attempts`` is the
claim's token): a worker whose row was claimed again by another stops at its next
object, so two workers never run the same row. Only a worker that died leaves a
row past its lease; the relay (relay.py, sharing/access/pacs_relay.py) re-queues
it, at most ``DICOM_TASK_MAX_ATTEMPTS`` claims in all, and the next claim resumes
where the counts say the last one was.
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

RELAY_BATCH = 200


class LeaseLost(Exception):
    """The row was claimed again by another worker: this one must stop."""


def lease_until(now=None) -> datetime.datetime:
    return (now or timezone.now()) + datetime.timedelta(
        seconds=settings.DICOM_TASK_LEASE
    )


def max_attempts() -> int:
    return max(1, settings.DICOM_TASK_MAX_ATTEMPTS)


def stalled(model, *, now=None) -> Q:
    """Rows nobody holds: waiting or claimed, past their lease."""
    return Q(
        status__in=[model.Status.PENDING, model.CLAIMED],
        leased_until__lt=now or timezone.now(),
    )


class Lease:
    """One worker's claim of a row: renew it with each change, release it at the end."""

    def __init__(self, model, pk: int, attempt: int):
        self.model, self.pk, self.attempt = model, pk, attempt
        self.renewed = time.monotonic()

    def hold(self, **changes) -> None:
        """Write ``changes`` and renew the lease, if the claim is still this one's."""
        held = self.model.objects.filter(
            pk=self.pk, status=self.model.CLAIMED, attempts=self.attempt
        ).update(leased_until=lease_until(), **changes)
        if not held:
            raise LeaseLost(f"{self.model.__name__} {self.pk}")
        self.renewed = time.monotonic()

    def keep(self) -> None:
        """Renew the lease if a third of it has gone by (a long stretch of work)."""
        if time.monotonic() - self.renewed > settings.DICOM_TASK_LEASE / 3:
            self.hold()

    def release(self, **changes) -> None:
        """Write the row's end (``changes`` sets its status) and drop the lease."""
        released = self.model.objects.filter(
            pk=self.pk, status=self.model.CLAIMED, attempts=self.attempt
        ).update(leased_until=None, **changes)
        if not released:
            raise LeaseLost(f"{self.model.__name__} {self.pk}")


def claim(model, pk: int) -> Lease | None:
    """Claim the row for this worker, or return None when someone holds it.

    A pending row, or a claimed one past its lease (its worker died), is taken,
    within the bound on attempts; a finished row, or one held, is left alone.
    """
    now = timezone.now()
    free = Q(status=model.Status.PENDING) | Q(
        status=model.CLAIMED, leased_until__lt=now
    )
    claimed = model.objects.filter(free, pk=pk, attempts__lt=max_attempts()).update(
        status=model.CLAIMED,
        leased_until=lease_until(now),
        attempts=models.F("attempts") + 1,
    )
    if not claimed:
        return None
    attempt = model.objects.values_list("attempts", flat=True).get(pk=pk)
    return Lease(model, pk, attempt)


def requeue(model, pk: int, *, now=None) -> bool:
    """Put a stalled row back to pending, leased for the broker (False: not stalled)."""
    now = now or timezone.now()
    return bool(
        model.objects.filter(stalled(model, now=now), pk=pk).update(
            status=model.Status.PENDING, leased_until=lease_until(now)
        )
    )


@dataclass
class RelayResult:
    requeued: int = 0
    given_up: int = 0
    refused: int = 0  # the broker refused: left for the next sweep


def relay(model, *, publish, give_up, now=None, batch=RELAY_BATCH) -> RelayResult:
    """Re-queue the model's stalled rows; give up on those out of attempts.

    ``publish(pk) -> bool`` hands a row's task to the broker; ``give_up(row)``
    fails a row with the reason. A row is re-queued under a lease of its own
    (conditionally, like a claim), so the next sweep leaves it to its task.
    """
    now = now or timezone.now()
    result = RelayResult()
    rows = list(
        model.objects.filter(stalled(model, now=now)).order_by("created_at", "id")[
            :batch
        ]
    )
    for row in rows:
        if row.attempts >= max_attempts():
            give_up(row)
            result.given_up += 1
            continue
        if not requeue(model, row.pk, now=now):
            continue  # claimed or finished meanwhile
        if publish(row.pk):
            result.requeued += 1
            continue
        # The broker is down: give it back to the next sweep.
        model.objects.filter(
            pk=row.pk, status=model.Status.PENDING, attempts=row.attempts
        ).update(leased_until=now)
        result.refused += 1
        logger.warning(
            "Relay: broker unavailable, %s %s waits for the next sweep",
            model.__name__,
            row.pk,
        )
        break
    return result
