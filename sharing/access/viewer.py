"""The received study and its viewer: one study seen through one bucket.

studies' viewer pieces (studies/viewer.py) do the work; this module decides
what they may show. Every view authorizes the bucket through
sharing.access.guard (`bucket_view`) on every request, then takes the study from
the bucket's share and the series and instances from that study only, so an id
of another share is a 404. An anonymized bucket shows the pseudonym and never
the report.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from studies import viewer
from studies.deidentify import deidentification_salt
from studies.download import study_download_response

from ..audit.record import audit_event, audit_record
from ..models import ACCESS_RANK, Access, AuditEvent, Pseudonym
from .guard import (
    bucket_view,
    get_study_of_bucket,
    is_open_to,
    may_reshare,
    patient_shown,
)
from .ohif import open_in_ohif_url
from .pacs import pacs_panel
from .selectors import access_label, report_rank
from .services import bucket_mark_opened


def bucket_permissions(request, *, bucket, study):
    """Return the ViewerContext of a study seen through an (authorized) bucket."""
    share = bucket.share
    rank = report_rank(
        bucket=bucket,
        study=study,
        user=request.user,
        is_open=lambda other: is_open_to(request, other),
    )
    return viewer.ViewerContext(
        can_read_report=rank is not None and rank >= ACCESS_RANK[Access.IMAGES_READ],
        can_write_report=rank is not None and rank >= ACCESS_RANK[Access.IMAGES_WRITE],
        can_download=True,
        pseudonym=(
            Pseudonym.objects.for_patient(bucket=bucket, patient=study.patient)
            if share.anonymize
            else None
        ),
        message=share.message or None,
        message_from=str(share.sender),
    )


def bucket_urls(bucket, study):
    """Return the ViewerUrls of one study of a bucket: every URL under the bucket."""
    ids = {"bucket_id": bucket.pk, "study_id": study.pk}
    return viewer.ViewerUrls(
        series=lambda s: reverse(
            "sharing:received_series", kwargs={**ids, "series_id": s.pk}
        ),
        frame=lambda i, n: reverse(
            "sharing:received_frame",
            kwargs={**ids, "instance_id": i.pk, "frame": n, "fmt": "png"},
        ),
        thumbnail=lambda s: reverse(
            "sharing:received_thumbnail", kwargs={**ids, "series_id": s.pk}
        ),
        download=reverse("sharing:received_download", kwargs=ids),
        report_edit=reverse("sharing:received_report", kwargs=ids),
        extra={"message": reverse("sharing:received_message", kwargs=ids)},
    )


def received_study_context(*, bucket, study):
    """Return the received-study page's context without the viewer."""
    share = bucket.share
    return {
        "bucket": bucket,
        "share": share,
        "study": study,
        "patient": patient_shown(bucket, study.patient),
        "access_label": access_label(share),
        "reshare_url": (
            reverse("sharing:reshare_start", kwargs={"bucket_id": bucket.pk})
            if may_reshare(bucket)
            else None
        ),
        "study_count": (
            study.share_study_count
            if hasattr(study, "share_study_count")
            else share.studies.count()
        ),
        "ohif_url": open_in_ohif_url(bucket, study),
    }


def render_received_study(
    request, *, bucket, study, series=None, show_message=False, audit=()
):
    """Render the received-study page with the viewer; audit a report shown.

    The events of `audit` (the opening) and the report's are written in one
    statement.
    """
    permissions = bucket_permissions(request, bucket=bucket, study=study)
    context = received_study_context(bucket=bucket, study=study)
    context["pacs"] = pacs_panel(user=request.user, bucket=bucket)
    context.update(
        viewer.viewer_context(
            study=study,
            permissions=permissions,
            urls=bucket_urls(bucket, study),
            series=series,
            show_message=show_message,
        )
    )
    events = [
        *audit,
        *_report_shown_events(
            request, bucket=bucket, study=study, view=context["viewer"]
        ),
    ]
    if events:
        AuditEvent.objects.bulk_create(events)
    return render(request, "sharing/access/received_study.html", context)


def _report_shown_events(request, *, bucket, study, view):
    """Return the audit event of a report shown (a list: none or one)."""
    report = view.get("report")
    if view.get("report_readable") and report is not None and report.text:
        return [
            audit_event(
                action=AuditEvent.Action.REPORT_READ,
                request=request,
                bucket=bucket,
                studies=[study],
            )
        ]
    return []


def _open_and_render(request, *, bucket, study, first_only=False, **page):
    """Record the opening (bucket_mark_opened) and render the page; the opening's
    audit event is written with the page's own."""
    audit = []
    bucket_mark_opened(
        bucket=bucket,
        user=request.user,
        study=study,
        request=request,
        first_only=first_only,
        audit=audit,
    )
    return render_received_study(
        request, bucket=bucket, study=study, audit=audit, **page
    )


@bucket_view
def received_study(request, bucket, study_id):
    """Show a received study: exam header, series, the sender's message, viewer."""
    study = get_study_of_bucket(bucket, study_id, request=request)
    return _open_and_render(request, bucket=bucket, study=study)


@bucket_view
def received_series(request, bucket, study_id, series_id):
    """Show a received study with one of its series in the viewer."""
    study = get_study_of_bucket(bucket, study_id, request=request)
    series = viewer.series_for_study(study=study, series_id=series_id)
    return _open_and_render(
        request, bucket=bucket, study=study, first_only=True, series=series
    )


@bucket_view
def received_message(request, bucket, study_id):
    """Show a received study with the sender's "Message" series open."""
    study = get_study_of_bucket(bucket, study_id, request=request)
    if not bucket.share.message:
        raise Http404("This share has no message.")
    return _open_and_render(
        request, bucket=bucket, study=study, first_only=True, show_message=True
    )


@bucket_view(image=True)
def received_thumbnail(request, bucket, study_id, series_id):
    study = get_study_of_bucket(bucket, study_id)
    series = viewer.series_for_study(study=study, series_id=series_id)
    return viewer.thumbnail_response(request, series, anonymized=bucket.share.anonymize)


@bucket_view(image=True)
def received_frame(request, bucket, study_id, instance_id, frame, fmt):
    study = get_study_of_bucket(bucket, study_id)
    instance = viewer.instance_for_study(
        study=study, instance_id=instance_id, anonymized=bucket.share.anonymize
    )
    return viewer.frame_response(request, instance, frame, fmt=fmt)


@bucket_view
def received_download(request, bucket, study_id):
    """Send the study as a ZIP with the message instance; de-identified if anonymized.

    Audited once, when the download starts.
    """
    study = get_study_of_bucket(bucket, study_id)
    share = bucket.share
    permissions = bucket_permissions(request, bucket=bucket, study=study)
    if not permissions.can_download:
        raise Http404("No download here.")
    anonymized = permissions.pseudonym is not None
    response = study_download_response(
        study=study,
        pseudonym=permissions.pseudonym,
        salt=deidentification_salt(f"bucket:{bucket.pk}") if anonymized else None,
        message=share.message,
        message_sender=share.sender,
        message_sent_at=share.created_at,
        message_uid_seed=share.pk,
    )
    audit_record(
        action=AuditEvent.Action.DOWNLOADED,
        request=request,
        bucket=bucket,
        studies=[study],
        details={"anonymized": anonymized},
    )
    return response


@bucket_view
@require_http_methods(["GET", "POST"])
def received_report(request, bucket, study_id):
    """Show the report (GET) or save an edit (POST), as the bucket allows.

    An anonymized bucket, or one without report access, answers 404 to both.
    """
    study = get_study_of_bucket(bucket, study_id, request=request)
    permissions = bucket_permissions(request, bucket=bucket, study=study)
    if not permissions.report_readable:
        raise Http404("No report here.")
    study_url = reverse(
        "sharing:received_study",
        kwargs={"bucket_id": bucket.pk, "study_id": study.pk},
    )
    if request.method == "POST":
        # Raises 404 without write access; the edit is audited by a receiver of
        # studies.signals.report_edited (sharing/receivers.py), with the bucket.
        form = viewer.report_edit_handle(
            request,
            study=study,
            permissions=permissions,
            context={"bucket": bucket, "request": request},
        )
        if form.is_valid():
            messages.success(request, _("The report was saved."))
        else:
            messages.error(request, _("The report was not saved: it is too long."))
        return redirect(f"{study_url}#viewer-report")
    context = received_study_context(bucket=bucket, study=study)
    context.update(
        viewer.viewer_context(
            study=study, permissions=permissions, urls=bucket_urls(bucket, study)
        )
    )
    context["study_url"] = study_url
    AuditEvent.objects.bulk_create(
        _report_shown_events(
            request, bucket=bucket, study=study, view=context["viewer"]
        )
    )
    return render(request, "sharing/viewer/report.html", context)
