"""Run a bring-in: list the study's instances on the source (QIDO-RS), retrieve
them one by one (WADO-RS) into a temporary folder and hand each file to the
same import as ``manage.py import_dicom`` (``import_dicom_paths``), keeping the
counts the status page polls. One instance is in memory or on disk at a time.

The row is claimed under a lease (leases.py) renewed with every instance's
count. A claim after an interrupted one resumes: the instances already in
PACSshare are not retrieved again (the import is idempotent besides).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _

from ..dicom_import import Outcome, import_dicom_paths
from ..models import DicomWebImport, DicomWebSource, Instance, Study
from .leases import Lease, LeaseLost, claim
from .source import (
    SourceError,
    source_client,
    source_retrieve_instance,
    source_study,
    source_study_instances,
)

logger = logging.getLogger(__name__)

# Reasons kept per import (the status page shows them; the counts say the rest).
MAX_REASONS = 50
ERROR_MAX = DicomWebImport._meta.get_field("error").max_length


def _finish(row: DicomWebImport, lease: Lease, *, error: str = "") -> None:
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
    lease.release(
        status=status,
        error=error[:ERROR_MAX],
        study=study,
        finished_at=timezone.now(),
    )


def _count(
    row: DicomWebImport, lease: Lease, outcome: Outcome, sop_uid: str, reason: str
) -> None:
    """Count one instance, renewing the lease in the same statement."""
    field = {
        Outcome.IMPORTED: "imported",
        Outcome.PRESENT: "already_present",
        Outcome.SKIPPED: "failed",
    }[outcome]
    changes = {field: models.F(field) + 1}
    if outcome is Outcome.SKIPPED and len(row.reasons) < MAX_REASONS:
        row.reasons.append({"sop_instance_uid": sop_uid, "reason": reason[:200]})
        changes["reasons"] = row.reasons
    lease.hold(**changes)


def _resume(row: DicomWebImport, lease: Lease, instances: list) -> list:
    """Return the instances a resumed bring-in still has to retrieve.

    Those already in PACSshare were handled by the claim before (or were there
    before it): they count as imported, except those it found already present;
    failures are tried again.
    """
    here = set(
        Instance.objects.filter(
            series__study__department=row.department,
            series__study__study_instance_uid=row.study_instance_uid,
            sop_instance_uid__in=[i.sop_instance_uid for i in instances],
        ).values_list("sop_instance_uid", flat=True)
    )
    row.reasons = []
    lease.hold(
        imported=max(len(here) - row.already_present, 0),
        already_present=min(row.already_present, len(here)),
        failed=0,
        reasons=[],
    )
    return [i for i in instances if i.sop_instance_uid not in here]


def dicomweb_import_run(*, import_id: int) -> str:
    """Bring the study of one DicomWebImport in; return its final status.

    Run by the task. A row someone holds (a task delivered twice, a worker
    still at it) is left alone; one whose worker died is resumed. The source
    down, or the study gone, fails the row with the reason; an instance that
    cannot be retrieved or imported fails alone.
    """
    lease = claim(DicomWebImport, import_id)
    if lease is None:
        return "skipped"
    row = DicomWebImport.objects.select_related("department").get(pk=import_id)
    try:
        return _run(row, lease)
    except LeaseLost:
        logger.warning("DICOMweb import %s: claimed again by another worker", row.pk)
        return "lost"


def _run(row: DicomWebImport, lease: Lease) -> str:
    source = DicomWebSource.objects.filter(department=row.department).first()
    if source is None:
        _finish(row, lease, error=_("The department has no DICOMweb source any more."))
        return DicomWebImport.Status.FAILED
    client = source_client(source)
    try:
        remote = source_study(
            client=client, source=source, study_instance_uid=row.study_instance_uid
        )
        if remote is None:
            _finish(
                row, lease, error=_("The PACS does not hold this study (any more).")
            )
            return DicomWebImport.Status.FAILED
        instances = source_study_instances(
            client=client, source=source, study_instance_uid=row.study_instance_uid
        )
    except SourceError as exc:
        _finish(row, lease, error=str(exc))
        return DicomWebImport.Status.FAILED
    lease.hold(
        total=len(instances),
        patient_name=remote.patient_name[:200],
        description=remote.description[:200],
        study_date=remote.study_date,
    )
    if not instances:
        _finish(row, lease, error=_("The PACS lists no images for this study."))
        return DicomWebImport.Status.FAILED
    if lease.attempt > 1:
        instances = _resume(row, lease, instances)
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
                _count(row, lease, Outcome.SKIPPED, instance.sop_instance_uid, str(exc))
                continue
            summary = import_dicom_paths(paths=[path], department=row.department)
            path.unlink(missing_ok=True)
            for outcome in summary.outcomes:
                _count(
                    row,
                    lease,
                    outcome.outcome,
                    instance.sop_instance_uid,
                    outcome.reason,
                )
    _finish(row, lease)
    row.refresh_from_db()
    return row.status
