"""The access log as CSV: its columns, rows safe for spreadsheets, the download."""

import csv
import datetime
import json

from django.http import StreamingHttpResponse

from ..models import AuditEvent


class _Echo:
    def write(self, value):
        return value


def _safe_cell(value):
    # A cell starting with = + - @ would run as a formula in a spreadsheet.
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


# What an event shows, in admin and in the export (whose first column says UTC).
AUDIT_EVENT_FIELDS = [
    "created_at",
    "action",
    "actor",
    "department",
    "share",
    "bucket",
    "study_uids",
    "ip_address",
    "user_agent",
    "details",
]
AUDIT_CSV_HEADER = ["time_utc", *AUDIT_EVENT_FIELDS[1:]]


def audit_rows(events):
    """Yield the CSV rows of the access-log export, header first."""
    yield AUDIT_CSV_HEADER
    for event in events.iterator(chunk_size=500):
        yield [
            _safe_cell(value)
            for value in (
                event.created_at.astimezone(datetime.UTC).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                event.action,
                event.actor.get_username() if event.actor else "",
                event.department.code if event.department else "",
                event.share_id or "",
                event.bucket_id or "",
                " ".join(event.study_uids or []),
                event.ip_address or "",
                event.user_agent,
                json.dumps(event.details, sort_keys=True) if event.details else "",
            )
        ]


def audit_events_for_export(*, department, date_from, date_to):
    """Return a department's events from date_from to date_to inclusive (UTC days)."""
    start = datetime.datetime.combine(date_from, datetime.time.min, tzinfo=datetime.UTC)
    end = datetime.datetime.combine(
        date_to + datetime.timedelta(days=1), datetime.time.min, tzinfo=datetime.UTC
    )
    return (
        AuditEvent.objects.filter(
            department=department, created_at__gte=start, created_at__lt=end
        )
        .select_related("actor", "department")
        .order_by("created_at", "id")
    )


def audit_csv_response(*, events, filename):
    """Stream events as a CSV download."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in audit_rows(events)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
