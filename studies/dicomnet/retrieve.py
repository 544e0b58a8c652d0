"""Run a bring-in: list the study's instances on the source (QIDO-RS), retrieve
them one by one (WADO-RS) into a temporary folder and hand each file to the
same import as ``manage.py import_dicom`` (``import_dicom_paths``), keeping the
counts the status page polls. One instance is in memory or on disk at a time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _

from ..dicom_import import Outcome, import_dicom_paths
from ..models import DicomWebImport, DicomWebSource, Study
from .source import (
    SourceError,
    source_client,
    source_retrieve_instance,
    source_study,
    source_study_instances,
)

# Reasons kept per import (the status page shows them; the counts say the rest).
MAX_REASONS = 50
ERROR_MAX = DicomWebImport._meta.get_field("error").max_length


def _claim(import_id: int) -> DicomWebImport | None:
    claimed = DicomWebImport.objects.filter(
        pk=import_id, status=DicomWebImport.Status.PENDING
    ).update(status=DicomWebImport.Status.RUNNING)
    if not claimed:
        return None
    return DicomWebImport.objects.select_related("department").get(pk=import_id)


def _finish(row: DicomWebImport, *, error: str = "") -> None:
    row.refresh_from_db()
    if error:
        status = DicomWebImport.Status.FAILED
    elif row.failed == 0:
        status = DicomWebImport.Status.DONE
    elif row.imported or row.already_present:
        status = DicomWebImport.Status.PARTIAL
    else:
        status = DicomWebImport.Status.FAILED
    study = Study.objects.filter(
        department=row.department, study_instance_uid=row.study_instance_uid
    ).first()
    DicomWebImport.objects.filter(pk=row.pk).update(
        status=status,
        error=error[:ERROR_MAX],
        study=study,
        finished_at=timezone.now(),
    )


def _count(row: DicomWebImport, outcome: Outcome, sop_uid: str, reason: str) -> None:
    field = {
        Outcome.IMPORTED: "imported",
        Outcome.PRESENT: "already_present",
        Outcome.SKIPPED: "failed",
    }[outcome]
    DicomWebImport.objects.filter(pk=row.pk).update(**{field: models.F(field) + 1})
    if outcome is Outcome.SKIPPED and len(row.reasons) < MAX_REASONS:
        row.reasons.append({"sop_instance_uid": sop_uid, "reason": reason[:200]})
        DicomWebImport.objects.filter(pk=row.pk).update(reasons=row.reasons)


def dicomweb_import_run(*, import_id: int) -> str:
    """Bring the study of one DicomWebImport in; return its final status.

    Run by the task. A row already claimed (a task delivered twice) is left
    alone. The source down, or the study gone, fails the row with the reason;
    an instance that cannot be retrieved or imported fails alone.
    """
    row = _claim(import_id)
    if row is None:
        return "skipped"
    source = DicomWebSource.objects.filter(department=row.department).first()
    if source is None:
        _finish(row, error=_("The department has no DICOMweb source any more."))
        return DicomWebImport.Status.FAILED
    client = source_client(source)
    try:
        remote = source_study(
            client=client, source=source, study_instance_uid=row.study_instance_uid
        )
        if remote is None:
            _finish(row, error=_("The PACS does not hold this study (any more)."))
            return DicomWebImport.Status.FAILED
        instances = source_study_instances(
            client=client, source=source, study_instance_uid=row.study_instance_uid
        )
    except SourceError as exc:
        _finish(row, error=str(exc))
        return DicomWebImport.Status.FAILED
    DicomWebImport.objects.filter(pk=row.pk).update(
        total=len(instances),
        patient_name=remote.patient_name[:200],
        description=remote.description[:200],
        study_date=remote.study_date,
    )
    if not instances:
        _finish(row, error=_("The PACS lists no images for this study."))
        return DicomWebImport.Status.FAILED
    with tempfile.TemporaryDirectory(prefix="pacsshare-dicomweb-") as folder:
        for instance in instances:
            path = Path(folder) / f"{instance.sop_instance_uid}.dcm"
            try:
                source_retrieve_instance(
                    client=client,
                    source=source,
                    study_instance_uid=row.study_instance_uid,
                    instance=instance,
                    path=path,
                )
            except SourceError as exc:
                _count(row, Outcome.SKIPPED, instance.sop_instance_uid, str(exc))
                continue
            summary = import_dicom_paths(paths=[path], department=row.department)
            path.unlink(missing_ok=True)
            for outcome in summary.outcomes:
                _count(row, outcome.outcome, instance.sop_instance_uid, outcome.reason)
    _finish(row)
    row.refresh_from_db()
    return row.status
