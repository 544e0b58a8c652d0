"""Status Forwarding: the sending department watches, unlocks and revokes its
outgoing buckets; department admins export the access log."""

import datetime

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from pacsshare.paginator import CappedPaginator
from recipients.models import Membership

from ..audit.export import audit_csv_response, audit_events_for_export
from ..models import Pseudonym
from .guard import (
    SenderAction,
    departments_administered_by,
    get_bucket_for_sender,
    sender_may,
)
from .rows import bucket_rows_html
from .selectors import (
    MAIL_STATUS_CHOICES,
    BucketStatus,
    bucket_status,
    buckets_with_status_columns,
    departments_visible_to,
    status_page_ids,
)
from .services import (
    BucketAlreadyRevoked,
    BucketNotLocked,
    bucket_revoke,
    bucket_unlock,
)

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
    # A name, not a list: a department's senders run into the thousands.
    sender = forms.CharField(
        label=gettext_lazy("Shared by"),
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={"placeholder": gettext_lazy("Name"), "type": "search"}
        ),
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

    def filters(self):
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return {
            "status": data.get("status") or "",
            "department": data.get("department"),
            "sender": data.get("sender") or "",
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
    # One clock for the page: a row filtered as "not opened" is not shown expired.
    now = timezone.now()
    # The page's 50 ids first, over the bucket and share rows only; then those 50
    # with everything a row shows. A LIMIT-ed count numbers the pages.
    page = CappedPaginator(
        status_page_ids(user=request.user, now=now, **form.filters()),
        settings.STATUS_PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    ids = list(page.object_list)
    # The user's departments: those they administer decide the actions, those
    # they belong to what a row shows; the rows' own departments are mostly these.
    administered_departments, member_departments = _departments_of(request.user)
    administered = {department.pk for department in administered_departments}
    member_of = set(request.user.department_ids)
    by_id = {
        bucket.pk: bucket
        for bucket in buckets_with_status_columns(
            ids,
            departments={
                d.pk: d for d in (*member_departments, *administered_departments)
            },
            now=now,
        )
    }
    rows = []
    for bucket in (by_id[pk] for pk in ids if pk in by_id):
        status = bucket_status(bucket, now=now)
        may = {
            action: sender_may(
                user=request.user,
                bucket=bucket,
                action=action,
                administered_ids=administered,
            )
            for action in (SenderAction.UNLOCK, SenderAction.REVOKE)
        }
        rows.append(
            {
                "bucket": bucket,
                "share": bucket.share,
                "studies": _study_rows(bucket, request.user, member_of),
                "status": status,
                "can_unlock": may[SenderAction.UNLOCK]
                and status == BucketStatus.LOCKED,
                "can_revoke": may[SenderAction.REVOKE]
                and status != BucketStatus.REVOKED,
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
        # The departments just read, not a query each time the select renders.
        export_form.fields["department"].widget.choices = [
            (department.pk, str(department)) for department in administered_departments
        ]
    return render(
        request,
        "sharing/status/forwarding.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "rows_html": bucket_rows_html(rows, request),
            "query": query.urlencode(),
            "export_form": export_form,
            "statuses": BucketStatus,
            # The department filter shows only where there is a choice.
            "show_department": request.user.is_service_desk or len(member_of) > 1,
        },
    )


def _departments_of(user):
    """Return the departments the user administers and those they belong to.

    One query of their memberships (remembered on the user as department_ids);
    the service desk, which administers every department, reads them all.
    """
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("department")
        .order_by("department__name")
    )
    user._department_ids = [m.department_id for m in memberships]
    members = [m.department for m in memberships]
    if user.is_service_desk:
        return list(departments_administered_by(user=user)), members
    return [m.department for m in memberships if m.is_admin], members


def _study_rows(bucket, user, member_of):
    """Return the studies of a row; a re-sharer of anonymized data (not a member
    of the source department) sees the pseudonyms they were given, not the patient.
    """
    share = bucket.share
    listed = getattr(share, "listed_studies", None)  # buckets_with_status_columns
    studies = list(share.studies.all() if listed is None else listed)
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
            pseudonym = Pseudonym.objects.for_patient(
                bucket=share.parent_bucket, patient=study.patient
            )
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


def _back(request):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("sharing:status_forwarding")


# What each action does, and what it says when it is done or had nothing to do.
_ACTIONS = {
    SenderAction.UNLOCK: (
        bucket_unlock,
        BucketNotLocked,
        gettext_lazy("Bucket unlocked for %(recipient)s."),
        gettext_lazy("That bucket is not locked."),
    ),
    SenderAction.REVOKE: (
        bucket_revoke,
        BucketAlreadyRevoked,
        gettext_lazy("Access revoked for %(recipient)s."),
        gettext_lazy("That bucket was already revoked."),
    ),
}


@require_POST
@login_required
def status_bucket_action(request, bucket_id, action):
    """Unlock or revoke a bucket, as sharing.status.guard allows the user."""
    action = SenderAction(action)
    bucket = get_bucket_for_sender(
        user=request.user, bucket_id=bucket_id, action=action
    )
    service, nothing_to_do, done, skipped = _ACTIONS[action]
    try:
        service(bucket=bucket, by=request.user, request=request)
    except nothing_to_do:
        messages.info(request, skipped)
    else:
        messages.success(request, done % {"recipient": bucket.recipient})
    return _back(request)


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
