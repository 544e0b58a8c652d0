"""Receivers of other apps' signals; connected in SharingConfig.ready()."""

from ..models import AuditEvent, Bucket
from .record import audit_record


def record_report_edited(sender, *, report, revision, user, context=None, **kwargs):
    """Audit a saved report edit (studies.signals.report_edited), once per edit.

    ``context`` is what the editing view passed: ``{"bucket": ..., "request": ...}``
    from a bucket's viewer, a bare Bucket, or None. Through a bucket the event
    names it (and so the share and the sending department); otherwise the
    study's own department.
    """
    study = report.study
    request = None
    bucket = context if isinstance(context, Bucket) else None
    if isinstance(context, dict):
        bucket = context.get("bucket")
        request = context.get("request")
    audit_record(
        action=AuditEvent.Action.REPORT_EDITED,
        actor=user,
        request=request,
        bucket=bucket,
        department=None if bucket is not None else study.department,
        studies=[study],
        details={"revision": revision.pk},
    )


def record_study_downloaded(sender, *, study, user, request=None, **kwargs):
    """Audit a department member's download (studies.signals.study_downloaded)."""
    audit_record(
        action=AuditEvent.Action.DOWNLOADED,
        actor=user,
        request=request,
        department=study.department,
        studies=[study],
    )
