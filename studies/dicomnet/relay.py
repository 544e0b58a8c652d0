"""The relay of "Bring in": re-queue every bring-in nobody holds.

A bring-in is left behind by a worker that died (running, lease expired) or a
broker that lost its task (pending, lease expired). Celery beat runs
``relay_dicomweb_imports`` every ``DICOM_RELAY_PERIOD`` seconds;
``manage.py relay_dicom_tasks`` runs the same sweep. A row claimed
``DICOM_TASK_MAX_ATTEMPTS`` times is failed with the reason instead.
"""

import logging

from celery import shared_task

from ..models import DicomWebImport
from . import leases
from .bring_in import dicomweb_import_give_up, dicomweb_import_publish

logger = logging.getLogger(__name__)


def dicomweb_imports_relay(*, now=None) -> leases.RelayResult:
    """Re-queue the stalled bring-ins; fail those out of attempts."""
    return leases.relay(
        DicomWebImport,
        publish=lambda pk: dicomweb_import_publish(import_id=pk, fail=False),
        give_up=dicomweb_import_give_up,
        now=now,
    )


@shared_task(name="studies.relay_dicomweb_imports", ignore_result=True)
def relay_dicomweb_imports():
    """Run one sweep of the bring-ins (Celery beat schedules it)."""
    result = dicomweb_imports_relay()
    if result.requeued or result.given_up or result.refused:
        logger.info(
            "Relay: %d bring-ins re-queued, %d given up, %d refused by the broker",
            result.requeued,
            result.given_up,
            result.refused,
        )
    return result.requeued
