"""The relay of "Send to my PACS": re-queue every transfer nobody holds.

A transfer is left behind by a worker that died (sending, lease expired) or a
broker that lost its task (pending, lease expired). Celery beat runs
``relay_pacs_transfers`` every ``DICOM_RELAY_PERIOD`` seconds;
``manage.py relay_dicom_tasks`` runs the same sweep. A transfer claimed
``DICOM_TASK_MAX_ATTEMPTS`` times is failed with the reason (and audited)
instead.
"""

import logging

from celery import shared_task

from studies.dicomnet import leases

from ..models import PacsTransfer
from .pacs import pacs_transfer_give_up, pacs_transfer_publish

logger = logging.getLogger(__name__)


def pacs_transfers_relay(*, now=None) -> leases.RelayResult:
    """Re-queue the stalled transfers; fail those out of attempts."""
    return leases.relay(
        PacsTransfer,
        publish=lambda pk: pacs_transfer_publish(transfer_id=pk, fail=False),
        give_up=pacs_transfer_give_up,
        now=now,
    )


@shared_task(name="sharing.relay_pacs_transfers", ignore_result=True)
def relay_pacs_transfers():
    """Run one sweep of the PACS transfers (Celery beat schedules it)."""
    result = pacs_transfers_relay()
    if result.requeued or result.given_up or result.refused:
        logger.info(
            "Relay: %d PACS transfers re-queued, %d given up, %d refused by the broker",
            result.requeued,
            result.given_up,
            result.refused,
        )
    return result.requeued
