"""The viewer's building blocks, shared by department pages and bucket pages.

Every function here takes a study that the caller has ALREADY authorized, plus
a ViewerContext saying what the caller allows (report read/write, download,
pseudonym, message) and a ViewerUrls saying where the pieces live, so the
bucket side can hand in its own authorized URLs. Nothing here checks access.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django import forms
from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.utils.translation import gettext_lazy as _

from pacsshare.prepared import PreparedQuery

from . import rendering
from .models import Instance, Series
from .reports import report_get, report_update

# Seconds a browser may reuse a frame without asking. Short, because a revoked
# bucket should stop showing images soon; after that the ETag makes a re-check cheap.
FRAME_MAX_AGE = 300

CT_PRESETS = [
    ("soft-tissue", _("Soft tissue")),
    ("lung", _("Lung")),
    ("bone", _("Bone")),
    ("brain", _("Brain")),
]


@dataclass(frozen=True)
class ViewerContext:
    """What the caller allows for this view of the study.

    With a pseudonym (an anonymized bucket) the report is never readable or
    writable, whatever the flags say.
    """

    can_read_report: bool = False
    can_write_report: bool = False
    can_download: bool = False
    pseudonym: object | None = None
    message: str | None = None
    message_from: str | None = None

    @property
    def anonymized(self):
        return self.pseudonym is not None

    @property
    def report_readable(self):
        return not self.anonymized and (self.can_read_report or self.can_write_report)

    @property
    def report_writable(self):
        return not self.anonymized and self.can_write_report


@dataclass(frozen=True)
class ViewerUrls:
    """URL builders for the viewer; the caller makes them point at its views."""

    series: Callable[[Series], str]
    frame: Callable[[Instance, int], str]
    thumbnail: Callable[[Series], str]
    download: str | None = None
    report_edit: str | None = None
    extra: dict = field(default_factory=dict)


MEMBER_PERMISSIONS = ViewerContext(
    can_read_report=True, can_write_report=True, can_download=True
)


class ReportForm(forms.Form):
    text = forms.CharField(
        label=_("Report"),
        required=False,
        strip=False,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 12, "class": "viewer-report-text"}),
    )


def _pixel_instances(instances, *, anonymized=False):
    """Return the images among instances; anonymized, only those that can be
    cleaned."""
    return [i for i in instances if i.has_pixels and (not anonymized or i.is_cleanable)]


# The viewer's series and their instances: two statements compiled once.
_SERIES_OF_STUDY = PreparedQuery(
    lambda *, study_id: Series.objects.filter(study_id=study_id)
)
_INSTANCES_OF_STUDY = PreparedQuery(
    lambda *, study_id: Instance.objects.filter(series__study_id=study_id)
)


def _series_with_instances(study):
    """Return the study's series in order and {series id: its instances in order}."""
    all_series = _SERIES_OF_STUDY.all(study_id=study.pk)
    by_id = {s.pk: s for s in all_series}
    instances_of = {s.pk: [] for s in all_series}
    series_field = Instance._meta.get_field("series")
    for instance in _INSTANCES_OF_STUDY.all(study_id=study.pk):
        # Each instance knows its series, as prefetch_related would have left it.
        series_field.set_cached_value(instance, by_id[instance.series_id])
        instances_of[instance.series_id].append(instance)
    return all_series, instances_of


def viewer_context(*, study, permissions, urls, series=None, show_message=False):
    """Return the template context of the viewer include ({"viewer": ...}).

    ``series`` is the series to show (default: the first with images);
    ``show_message`` opens the "Message" entry instead (needs a message).
    """
    all_series, instances_of = _series_with_instances(study)
    anonymized = permissions.anonymized
    left_out = (
        sum(1 for s in all_series for i in instances_of[s.pk] if not i.is_cleanable)
        if anonymized
        else 0
    )
    if anonymized:
        # What an anonymized share leaves out, it does not list either.
        all_series = [
            s for s in all_series if any(i.is_cleanable for i in instances_of[s.pk])
        ]
        if series is not None and series.pk not in {s.pk for s in all_series}:
            raise Http404("No such series")
    if series is None and not (show_message and permissions.message):
        series = next(
            (
                s
                for s in all_series
                if _pixel_instances(instances_of[s.pk], anonymized=anonymized)
            ),
            None,
        )
        series = series or (all_series[0] if all_series else None)
    if show_message and permissions.message:
        series = None

    patient = study.patient
    pseudonym = permissions.pseudonym
    entries = []
    for s in all_series:
        images = _pixel_instances(instances_of[s.pk], anonymized=anonymized)
        entries.append(
            {
                "series": s,
                "url": urls.series(s),
                "thumbnail_url": urls.thumbnail(s) if images else None,
                "count": len(images),
                "active": series is not None and s.pk == series.pk,
                "description": "" if pseudonym else s.description,
            }
        )

    instances = []
    if series is not None:
        # The series asked for is one of the study's (series_for_study).
        shown = instances_of[series.pk]
        for instance in _pixel_instances(shown, anonymized=anonymized):
            frames = instance.frame_count
            instances.append(
                {
                    "instance": instance,
                    "frames_json": json.dumps(
                        [urls.frame(instance, n) for n in range(frames)]
                    ),
                    "frame_count": frames,
                }
            )

    report = report_get(study=study) if permissions.report_readable else None
    form = None
    if permissions.report_writable and urls.report_edit:
        form = ReportForm(initial={"text": report.text if report else ""})

    return {
        "viewer": {
            "study": study,
            "anonymized": anonymized,
            # Instances an anonymized share leaves out (documents, burned-in text).
            "left_out": left_out,
            "patient_name": (
                f"{pseudonym.given_name} {pseudonym.family_name}"
                if pseudonym
                else patient.full_name
            ),
            "patient_id": (
                pseudonym.pseudo_patient_id if pseudonym else patient.patient_id
            ),
            "birth_date": None if pseudonym else patient.birth_date,
            "study_description": study.description,
            "series_list": entries,
            "active_series": series,
            "instances": instances,
            "first_frame_url": (
                json.loads(instances[0]["frames_json"])[0] if instances else None
            ),
            "presets": CT_PRESETS if series and series.modality == "CT" else [],
            "message": permissions.message or None,
            "message_from": permissions.message_from,
            "message_active": series is None and bool(permissions.message),
            "message_url": urls.extra.get("message"),
            "report_readable": permissions.report_readable,
            "report_writable": permissions.report_writable and bool(urls.report_edit),
            "report": report,
            # A study read with `report_has_revisions` (the received study's
            # page) asks for them only when there are.
            "report_revisions": (
                list(report.revisions.select_related("author")[:20])
                if report and getattr(study, "report_has_revisions", True)
                else []
            ),
            "report_form": form,
            "report_edit_url": urls.report_edit,
            "download_url": urls.download if permissions.can_download else None,
        }
    }


def window_from_request(request):
    """Read the window asked for in the query (?preset= or ?wc=&ww=)."""
    return rendering.window_parse(
        center=request.GET.get("wc"),
        width=request.GET.get("ww"),
        preset=request.GET.get("preset"),
    )


def _image_response(rendered):
    # A placeholder is re-asked for soon: the file may become decodable.
    max_age = 60 if rendered.placeholder else FRAME_MAX_AGE
    response = HttpResponse(rendered.content, content_type=rendered.content_type)
    response["ETag"] = rendered.etag
    # private: never stored by shared proxies; Vary: Cookie for old proxies too.
    response["Cache-Control"] = f"private, max-age={max_age}"
    response["Vary"] = "Cookie"
    if rendered.placeholder:
        response["X-Image-Placeholder"] = "1"
    return response


def frame_response(request, instance, frame, *, fmt="png"):
    """Return one rendered frame of an (authorized) instance as an image.

    The window comes from the query. A frame the instance does not have is a
    404; an undecodable file gives the placeholder image.
    """
    if fmt not in rendering.CONTENT_TYPES:
        raise Http404("Unknown image format")
    window = window_from_request(request)
    if not instance.has_pixels or frame >= instance.frame_count:
        raise Http404("No such frame")
    etag = rendering.frame_etag(
        sop_instance_uid=instance.sop_instance_uid, frame=frame, window=window, fmt=fmt
    )
    if etag in _if_none_match(request):
        response = HttpResponseNotModified()
        response["ETag"] = etag
        response["Cache-Control"] = f"private, max-age={FRAME_MAX_AGE}"
        response["Vary"] = "Cookie"
        return response
    try:
        rendered = rendering.frame_render(
            instance=instance, frame=frame, window=window, fmt=fmt
        )
    except rendering.FrameOutOfRange:
        raise Http404("No such frame") from None
    return _image_response(rendered)


def thumbnail_response(request, series, *, anonymized=False):
    """Return the thumbnail of an (authorized) series: its middle image.

    ``anonymized``: only among the images an anonymized share may show.
    """
    images = _pixel_instances(series.instances.all(), anonymized=anonymized)
    if not images:
        raise Http404("No images in this series")
    rendered = rendering.thumbnail_render(instance=images[len(images) // 2])
    if rendered.etag in _if_none_match(request):
        response = HttpResponseNotModified()
        response["ETag"] = rendered.etag
        return response
    return _image_response(rendered)


def _if_none_match(request):
    header = request.headers.get("If-None-Match", "")
    return {value.strip() for value in header.split(",") if value.strip()}


def report_edit_handle(request, *, study, permissions, context=None):
    """Save a POSTed report edit if allowed; return the bound form.

    Raises Http404 when the caller does not allow writing (e.g. an anonymized
    bucket), so the URL refuses whatever is posted. ``context`` travels with
    the ``report_edited`` signal (the bucket, for the audit).
    """
    if not permissions.report_writable:
        raise Http404("No report here")
    form = ReportForm(request.POST)
    if form.is_valid():
        report_update(
            study=study,
            author=request.user,
            text=form.cleaned_data["text"],
            context=context,
        )
    return form


def series_for_study(*, study, series_id):
    """Return a series of the (authorized) study, or raise 404."""
    try:
        return study.series.get(pk=series_id)
    except Series.DoesNotExist:
        raise Http404("No such series") from None


def instance_for_study(*, study, instance_id, anonymized=False):
    """Return an instance of the (authorized) study, or raise 404.

    ``anonymized``: an instance an anonymized share leaves out is a 404 too.
    """
    try:
        instance = Instance.objects.select_related("series").get(
            pk=instance_id, series__study=study
        )
    except Instance.DoesNotExist:
        raise Http404("No such instance") from None
    if anonymized and not instance.is_cleanable:
        raise Http404("No such instance")
    return instance
