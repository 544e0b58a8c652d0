"""Report edits: every change is kept as a revision with its author and time."""

from __future__ import annotations

from django.db import transaction

from .models import Report, ReportRevision
from .signals import report_edited


def report_get(*, study):
    """Return the study's report, or None when it has none."""
    try:
        return study.report
    except Report.DoesNotExist:
        return None


@transaction.atomic
def report_update(*, study, author, text, context=None):
    """Save ``text`` as the study's report; return (report, revision or None).

    The first edit of a report that had text keeps that text as a revision too,
    so the history starts from what was imported. An unchanged text is no edit.
    After commit, ``signals.report_edited`` tells listeners (the audit).
    """
    text = text.replace("\r\n", "\n")
    report, _created = Report.objects.select_for_update().get_or_create(study=study)
    if report.text == text:
        return report, None
    if report.text and not report.revisions.exists():
        ReportRevision.objects.create(
            report=report, text=report.text, author=report.updated_by
        )
    report.text = text
    report.updated_by = author
    report.save()
    revision = ReportRevision.objects.create(report=report, text=text, author=author)
    transaction.on_commit(
        lambda: report_edited.send(
            sender=Report,
            report=report,
            revision=revision,
            user=author,
            context=context,
        )
    )
    return report, revision
