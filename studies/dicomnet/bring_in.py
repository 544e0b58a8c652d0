"""Bring a study in from the department's DICOMweb source.

``dicomweb_import_start`` records a DicomWebImport and queues its task after
commit; the task (tasks.py) runs ``retrieve.dicomweb_import_run``. A bring-in
whose worker died is resumed by the relay (relay.py), or at once by the next
click on "Bring in" for the same study.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import DicomWebImport, DicomWebSource
from . import leases
from .tasks import PUBLISH_RETRY_POLICY, dicomweb_import

logger = logging.getLogger(__name__)


def dicomweb_import_start(
    *, source: DicomWebSource, user, study_instance_uid: str
) -> DicomWebImport:
    """Record a bring-in of one study and queue its task when the caller commits.

    A bring-in of the same study still waiting or running is returned instead
    of starting a second one; one that was interrupted (its worker died) is
    resumed now, or given up and replaced by a new one when out of attempts.
    """
    running = DicomWebImport.objects.filter(
        department=source.department,
        study_instance_uid=study_instance_uid,
        status__in=[DicomWebImport.Status.PENDING, DicomWebImport.Status.RUNNING],
    ).first()
    if running is not None and not running.is_stalled:
        return running
    if running is not None:
        if running.attempts < leases.max_attempts():
            if leases.requeue(DicomWebImport, running.pk):
                row_id = running.pk
                transaction.on_commit(lambda: dicomweb_import_publish(import_id=row_id))
            running.refresh_from_db()  # resumed, by this click or another
            return running
        if not dicomweb_import_give_up(running):
            running.refresh_from_db()  # taken up meanwhile
            return running
    row = DicomWebImport.objects.create(
        department=source.department,
        user=user,
        study_instance_uid=study_instance_uid,
        leased_until=leases.lease_until(),
    )
    row_id = row.pk
    transaction.on_commit(lambda: dicomweb_import_publish(import_id=row_id))
    return row


def dicomweb_import_publish(*, import_id: int, fail: bool = True) -> bool:
    """Hand the import's task to the broker; a refusal fails the row, not the page.

    The relay passes ``fail=False``: a refusal then leaves the row to its next sweep.
    """
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
        if fail:
            DicomWebImport.objects.filter(
                pk=import_id, status=DicomWebImport.Status.PENDING
            ).update(
                status=DicomWebImport.Status.FAILED,
                error=_("PACSshare's task queue is unavailable. Try again later."),
                finished_at=timezone.now(),
                leased_until=None,
            )
        return False
    return True


def dicomweb_import_give_up(row: DicomWebImport) -> bool:
    """Fail a bring-in interrupted too often, saying so; False if it moved on."""
    error = _(
        "The bring-in was interrupted %(count)d times (PACSshare's worker "
        "stopped) and was given up. The images already brought in are kept: "
        "bring the study in again for the rest."
    ) % {"count": row.attempts}
    return bool(
        DicomWebImport.objects.filter(
            leases.stalled(DicomWebImport), pk=row.pk, attempts=row.attempts
        ).update(
            status=DicomWebImport.Status.FAILED,
            error=error[:300],
            finished_at=timezone.now(),
            leased_until=None,
        )
    )
