"""Viewer pages for members of the study's department.

Every view authorizes through selectors.get_study_for_member (the images through
get_instance_for_member; 404 otherwise),
then takes series and instances only from that study. Recipients reach the
same pieces through sharing's bucket views, which pass their own permissions
and URLs.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import viewer
from .download import study_zip_response
from .models import Study
from .selectors import (
    get_instance_for_member,
    get_study_for_member,
    series_of_study,
)
from .signals import study_downloaded


def member_urls(study):
    """Return the ViewerUrls of the department pages for one study."""
    return viewer.ViewerUrls(
        series=lambda s: reverse("studies:series", args=[study.pk, s.pk]),
        frame=lambda i, n: reverse("studies:frame", args=[study.pk, i.pk, n, "png"]),
        thumbnail=lambda s: reverse("studies:series_thumbnail", args=[study.pk, s.pk]),
        download=reverse("studies:download", args=[study.pk]),
        report_edit=reverse("studies:report_edit", args=[study.pk]),
    )


def _study_page(request, study, *, series=None):
    """Render the study page with the viewer on one series (default: the first)."""
    context = {
        "study": study,
        "series_list": series_of_study(study=study),
        **viewer.viewer_context(
            study=study,
            permissions=viewer.MEMBER_PERMISSIONS,
            urls=member_urls(study),
            series=series,
        ),
    }
    return render(request, "studies/study.html", context)


@login_required
def study_detail(request, study_id):
    """Show one study of the user's departments: patient, series, viewer, report."""
    study = get_study_for_member(user=request.user, study_id=study_id)
    return _study_page(request, study)


@login_required
def series_detail(request, study_id, series_id):
    """Show the study page with one of its series in the viewer."""
    study = get_study_for_member(user=request.user, study_id=study_id)
    series = viewer.series_for_study(study=study, series_id=series_id)
    return _study_page(request, study, series=series)


@login_required
def series_thumbnail(request, study_id, series_id):
    study = get_study_for_member(user=request.user, study_id=study_id)
    series = viewer.series_for_study(study=study, series_id=series_id)
    return viewer.thumbnail_response(request, series)


@login_required
def frame(request, study_id, instance_id, frame, fmt):
    instance = get_instance_for_member(
        user=request.user, study_id=study_id, instance_id=instance_id
    )
    return viewer.frame_response(request, instance, frame, fmt=fmt)


@login_required
def download(request, study_id):
    study = get_study_for_member(user=request.user, study_id=study_id)
    study_downloaded.send(sender=Study, study=study, user=request.user, request=request)
    return study_zip_response(study=study)


@login_required
@require_POST
def report_edit(request, study_id):
    study = get_study_for_member(user=request.user, study_id=study_id)
    form = viewer.report_edit_handle(
        request, study=study, permissions=viewer.MEMBER_PERMISSIONS
    )
    if form.is_valid():
        messages.success(request, _("The report was saved."))
    else:
        messages.error(request, _("The report was not saved: it is too long."))
    return redirect(f"{reverse('studies:study', args=[study.pk])}#viewer-report")
