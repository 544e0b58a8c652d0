"""Bring a study in from the department's DICOMweb source.

``dicomweb_import_start`` records a DicomWebImport and queues its task after
commit; the task (tasks.py) runs ``retrieve.dicomweb_import_run``.
"""

from __future__ import annotations

import datetime
import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import DicomWebImport, DicomWebSource
from .tasks import PUBLISH_RETRY_POLICY, dicomweb_import

logger = logging.getLogger(__name__)

STALE_AFTER = datetime.timedelta(hours=2)


def dicomweb_import_start(
    *, source: DicomWebSource, user, study_instance_uid: str
) -> DicomWebImport:
    """Record a bring-in of one study and queue its task when the caller commits.

    A bring-in of the same study still waiting or running is returned instead
    of starting a second one.
    """
    running = DicomWebImport.objects.filter(
        department=source.department,
        study_instance_uid=study_instance_uid,
        status__in=[DicomWebImport.Status.PENDING, DicomWebImport.Status.RUNNING],
        # A row its worker left behind (it died) does not block a new try.
        created_at__gte=timezone.now() - STALE_AFTER,
    ).first()
    if running is not None:
        return running
    row = DicomWebImport.objects.create(
        department=source.department,
        user=user,
        study_instance_uid=study_instance_uid,
    )
    row_id = row.pk
    transaction.on_commit(lambda: dicomweb_import_publish(import_id=row_id))
    return row


def dicomweb_import_publish(*, import_id: int) -> bool:
    """Hand the import's task to the broker; a refusal fails the row, not the page."""
    try:
        dicomweb_import.apply_async(
            args=[import_id], retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception as exc:  # noqa: BLE001 - any broker failure
        logger.warning(
            "DICOMweb import %s not queued: the broker refused (%s)",
            import_id,
            type(exc).__name__,
        )
        DicomWebImport.objects.filter(
            pk=import_id, status=DicomWebImport.Status.PENDING
        ).update(
            status=DicomWebImport.Status.FAILED,
            error=_("PACSshare's task queue is unavailable. Try again later."),
            finished_at=timezone.now(),
        )
        return False
    return True
