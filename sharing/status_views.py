"""Status Forwarding: the sending department watches, unlocks and revokes its
outgoing buckets; department admins export the access log."""

import csv
import datetime
import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from .access import pseudonym_for
from .admin_services import (
    BucketAlreadyRevoked,
    BucketNotLocked,
    bucket_revoke,
    bucket_unlock,
    can_administer_bucket,
    can_revoke_bucket,
    departments_administered_by,
)
from .models import AuditEvent
from .status_selectors import (
    MAIL_STATUS_CHOICES,
    BucketStatus,
    bucket_status,
    buckets_filter,
    buckets_with_status_columns,
    departments_visible_to,
    outgoing_buckets_visible_to,
    senders_visible_to,
)

BUCKETS_PER_PAGE = 25
DATE_INPUT_FORMATS = ["%d/%m/%Y", "%Y-%m-%d"]


class StatusFilterForm(forms.Form):
    q = forms.CharField(
        label=gettext_lazy("Search"),
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={
                "placeholder": gettext_lazy("Recipient or patient"),
                "type": "search",
            }
        ),
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[
            ("", gettext_lazy("Any status")),
            *BucketStatus.choices,
            *MAIL_STATUS_CHOICES,
        ],
    )
    department = forms.ModelChoiceField(
        label=gettext_lazy("Department"),
        required=False,
        queryset=None,
        empty_label=gettext_lazy("All departments"),
    )
    sender = forms.ModelChoiceField(
        label=gettext_lazy("Shared by"),
        required=False,
        queryset=None,
        empty_label=gettext_lazy("Anyone"),
    )
    shared_from = forms.DateField(
        label=gettext_lazy("Shared from"),
        required=False,
        input_formats=DATE_INPUT_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    shared_to = forms.DateField(
        label=gettext_lazy("Shared to"),
        required=False,
        input_formats=DATE_INPUT_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = departments_visible_to(user=user)
        self.fields["sender"].queryset = senders_visible_to(user=user)

    def filters(self):
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return {
            "status": data.get("status") or "",
            "department": data.get("department"),
            "sender": data.get("sender"),
            "shared_from": data.get("shared_from"),
            "shared_to": data.get("shared_to"),
            "search": data.get("q") or "",
        }


class AuditExportForm(forms.Form):
    department = forms.ModelChoiceField(
        label=gettext_lazy("Department"), queryset=None, empty_label=None
    )
    date_from = forms.DateField(
        label=gettext_lazy("From"),
        input_formats=DATE_INPUT_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"),
        input_formats=DATE_INPUT_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = departments_administered_by(user=user)

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The start date is after the end date."))
        return data


@login_required
def status_forwarding(request):
    """List the outgoing buckets the user may watch, with filters and actions."""
    form = StatusFilterForm(request.GET or None, user=request.user)
    buckets = buckets_filter(
        outgoing_buckets_visible_to(user=request.user),
        **form.filters(),
        user=request.user,
    )
    buckets = buckets_with_status_columns(buckets).order_by(
        "-share__created_at", "-share_id", "pk"
    )
    page = Paginator(buckets, BUCKETS_PER_PAGE).get_page(request.GET.get("page"))
    # One query for the departments the user administers, not one per row.
    administered = set(
        departments_administered_by(user=request.user).values_list("pk", flat=True)
    )
    member_of = set(request.user.departments.values_list("pk", flat=True))
    now = timezone.now()
    rows = []
    for bucket in page.object_list:
        is_admin = request.user.is_service_desk or (
            bucket.share.source_department_id in administered
        )
        status = bucket_status(bucket, now=now)
        rows.append(
            {
                "bucket": bucket,
                "share": bucket.share,
                "studies": _study_rows(bucket, request.user, member_of),
                "status": status,
                "can_unlock": is_admin and status == BucketStatus.LOCKED,
                "can_revoke": status != BucketStatus.REVOKED
                and (is_admin or bucket.share.sender_id == request.user.pk),
            }
        )
    query = request.GET.copy()
    query.pop("page", None)
    export_form = None
    if administered:
        today = timezone.localdate()
        export_form = AuditExportForm(
            user=request.user,
            initial={
                "date_from": today - datetime.timedelta(days=30),
                "date_to": today,
            },
        )
    return render(
        request,
        "sharing/status/forwarding.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "query": query.urlencode(),
            "export_form": export_form,
            "statuses": BucketStatus,
        },
    )


def _study_rows(bucket, user, member_of):
    """Return the studies of a row; a re-sharer of anonymized data (not a member
    of the source department) sees the pseudonyms they were given, not the patient.
    """
    share = bucket.share
    studies = list(share.studies.all())
    if (
        not share.anonymize
        or user.is_service_desk
        or share.source_department_id in member_of
    ):
        return studies
    rows = []
    for study in studies:
        if share.parent_bucket is None:
            patient = {"full_name": _("Anonymous"), "patient_id": ""}
        else:
            pseudonym = pseudonym_for(bucket=share.parent_bucket, patient=study.patient)
            patient = {
                "full_name": pseudonym.full_name,
                "patient_id": pseudonym.pseudo_patient_id,
            }
        rows.append(
            {
                "patient": patient,
                "description": study.description,
                "study_date": study.study_date,
            }
        )
    return rows


def _visible_bucket(request, bucket_id):
    bucket = (
        outgoing_buckets_visible_to(user=request.user)
        .select_related("share")
        .filter(pk=bucket_id)
        .first()
    )
    if bucket is None:
        raise Http404
    return bucket


def _back(request):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("sharing:status_forwarding")


@require_POST
@login_required
def status_unlock(request, bucket_id):
    """Unlock a locked bucket (department admins of the sender, service desk)."""
    bucket = _visible_bucket(request, bucket_id)
    if not can_administer_bucket(user=request.user, bucket=bucket):
        raise PermissionDenied
    try:
        bucket_unlock(bucket=bucket, by=request.user, request=request)
    except BucketNotLocked:
        messages.info(request, _("That bucket is not locked."))
    else:
        messages.success(
            request,
            _("Bucket unlocked for %(recipient)s.") % {"recipient": bucket.recipient},
        )
    return _back(request)


@require_POST
@login_required
def status_revoke(request, bucket_id):
    """Revoke a bucket (department admins of the sender, the sender, service desk)."""
    bucket = _visible_bucket(request, bucket_id)
    if not can_revoke_bucket(user=request.user, bucket=bucket):
        raise PermissionDenied
    try:
        bucket_revoke(bucket=bucket, by=request.user, request=request)
    except BucketAlreadyRevoked:
        messages.info(request, _("That bucket was already revoked."))
    else:
        messages.success(
            request,
            _("Access revoked for %(recipient)s.") % {"recipient": bucket.recipient},
        )
    return _back(request)


class _Echo:
    def write(self, value):
        return value


def _safe_cell(value):
    # A cell starting with = + - @ would run as a formula in a spreadsheet.
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


AUDIT_CSV_HEADER = [
    "time_utc",
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


@login_required
def audit_export(request):
    """Download a department's access log for a date range, as CSV (UTC times)."""
    if not departments_administered_by(user=request.user).exists():
        raise PermissionDenied
    form = AuditExportForm(request.GET or None, user=request.user)
    if not form.is_valid():
        return render(
            request,
            "sharing/status/audit_export.html",
            {"form": form},
            status=400 if form.is_bound else 200,
        )
    department = form.cleaned_data["department"]
    date_from, date_to = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
    events = audit_events_for_export(
        department=department, date_from=date_from, date_to=date_to
    )
    filename = f"audit-{department.code}-{date_from:%Y%m%d}-{date_to:%Y%m%d}.csv"
    return audit_csv_response(events=events, filename=filename)
