"""The viewer pages of department members: series, frames, download, report."""

import io
import json
import re
import zipfile
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from recipients.models import Membership
from studies import viewer
from studies.models import Instance, Report, ReportRevision
from studies.selectors import get_instance_for_member
from studies.signals import report_edited
from studies.viewer_views import member_urls
from tests.factories import (
    DepartmentFactory,
    SeriesFactory,
    StudyFactory,
    UserFactory,
    add_images,
    instance_create,
    shipped_file,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def department():
    return DepartmentFactory(code="rad-viewer")


@pytest.fixture
def study(department):
    study = StudyFactory(patient__department=department)
    ct = SeriesFactory(study=study, series_number=1, modality="CT", description="Axial")
    add_images(ct, "CT_small.dcm", count=3)
    us = SeriesFactory(study=study, series_number=2, modality="US", description="Cine")
    instance_create(series=us, data=shipped_file("examples_ybr_color.dcm").read_bytes())
    Report.objects.create(study=study, text="No pulmonary embolism.")
    return study


@pytest.fixture
def member(client, department):
    user = UserFactory(departments=[department], first_name="Els", last_name="Maes")
    client.force_login(user)
    return user


@pytest.fixture
def outsider(client):
    user = UserFactory(departments=[DepartmentFactory(code="elsewhere")])
    client.force_login(user)
    return user


def _urls(study):
    ct, us = study.series.order_by("series_number")
    instance = ct.instances.first()
    return {
        "series": reverse("studies:series", args=[study.pk, us.pk]),
        "thumbnail": reverse("studies:series_thumbnail", args=[study.pk, ct.pk]),
        "frame": reverse("studies:frame", args=[study.pk, instance.pk, 0, "png"]),
        "download": reverse("studies:download", args=[study.pk]),
        "report": reverse("studies:report_edit", args=[study.pk]),
    }


def test_the_study_page_shows_the_viewer_with_series_and_report(client, member, study):
    response = client.get(study.get_absolute_url())

    assert response.status_code == 200
    html = response.text
    assert "data-viewer" in html
    assert html.count('class="viewer-thumb"') == 2
    frames = re.findall(r'data-frames="([^"]+)"', html)
    assert len(frames) == 3  # the CT series is shown first
    first = json.loads(frames[0].replace("&quot;", '"'))
    assert first[0].endswith("/frames/0.png")
    assert "No pulmonary embolism." in html
    assert "Soft tissue" in html and "Lung" in html  # CT presets
    assert reverse("studies:download", args=[study.pk]) in html
    assert "<script>" not in html and 'style="' not in html


def test_a_series_page_shows_every_frame_of_a_multi_frame_instance(
    client, member, study
):
    response = client.get(_urls(study)["series"])

    frames = re.findall(r'data-frames="([^"]+)"', response.text)
    assert len(frames) == 1
    assert len(json.loads(frames[0].replace("&quot;", '"'))) == 30
    assert "Soft tissue" not in response.text  # no CT presets for ultrasound


def test_a_frame_is_a_png_cached_privately(client, member, study):
    url = _urls(study)["frame"]

    response = client.get(url, {"preset": "lung"})

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (128, 128)
    assert response["Cache-Control"].startswith("private, max-age=")
    assert "Cookie" in response["Vary"]
    again = client.get(url, {"preset": "lung"}, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_a_frame_the_instance_does_not_have_is_not_found(client, member, study):
    instance = study.series.get(series_number=1).instances.first()

    for frame, fmt in ((1, "png"), (0, "gif")):
        url = reverse("studies:frame", args=[study.pk, instance.pk, frame, fmt])
        assert client.get(url).status_code == 404


def test_an_instance_of_another_study_is_not_found_through_this_one(
    client, member, study, department
):
    other = StudyFactory(patient__department=department)
    series = SeriesFactory(study=other)
    instance = instance_create(
        series=series, data=shipped_file("MR_small.dcm").read_bytes()
    )

    url = reverse("studies:frame", args=[study.pk, instance.pk, 0, "png"])
    assert client.get(url).status_code == 404


def test_a_member_who_leaves_the_department_no_longer_gets_its_frames(
    client, member, study
):
    url = _urls(study)["frame"]
    assert client.get(url).status_code == 200

    Membership.objects.filter(user=member).delete()

    assert client.get(url).status_code == 404


@pytest.mark.postgres  # cursor.mogrify is psycopg2's
def test_the_frame_instance_is_read_with_the_sql_the_orm_compiles(member, study):
    instance = study.series.get(series_number=1).instances.first()
    expected = (
        Instance.objects.select_related("series__study")
        .filter(
            pk=instance.pk,
            series__study_id=study.pk,
            series__study__department_id__in=Membership.objects.filter(
                user=member
            ).values("department_id"),
        )
        .order_by(*Instance._meta.ordering)[:1]
    )

    with CaptureQueriesContext(connection) as queries:
        found = get_instance_for_member(
            user=member, study_id=study.pk, instance_id=instance.pk
        )

    sql, params = expected.query.sql_with_params()
    with connection.cursor() as cursor:
        assert [q["sql"] for q in queries] == [cursor.mogrify(sql, params).decode()]
    assert found == instance
    assert found.series.study == study


def test_the_thumbnail_and_download_work_for_members(client, member, study):
    urls = _urls(study)

    thumbnail = client.get(urls["thumbnail"])
    download = client.get(urls["download"])

    assert thumbnail["Content-Type"] == "image/png"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert len(archive.namelist()) == 4


def test_every_viewer_url_is_not_found_for_another_department(client, outsider, study):
    urls = _urls(study)

    for name, url in urls.items():
        response = (
            client.post(url, {"text": "x"}) if name == "report" else client.get(url)
        )
        assert response.status_code == 404, name
    assert Report.objects.get(study=study).text == "No pulmonary embolism."


def test_a_member_edits_the_report_and_each_change_is_a_revision(
    client, member, study, django_capture_on_commit_callbacks
):
    heard = []

    def listener(sender, **kwargs):
        heard.append(kwargs)

    report_edited.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            with_commit = client.post(
                _urls(study)["report"], {"text": "No pulmonary embolism. Small nodule."}
            )
    finally:
        report_edited.disconnect(listener)

    assert with_commit.status_code == 302
    report = Report.objects.get(study=study)
    assert report.text == "No pulmonary embolism. Small nodule."
    assert report.updated_by == member
    revisions = list(ReportRevision.objects.filter(report=report).order_by("id"))
    assert [r.text for r in revisions] == [
        "No pulmonary embolism.",
        "No pulmonary embolism. Small nodule.",
    ]
    assert revisions[-1].author == member
    assert len(heard) == 1 and heard[0]["user"] == member
    page = client.get(study.get_absolute_url())
    assert "2 revisions" in page.text


def test_a_login_is_needed(client, study):
    response = client.get(_urls(study)["frame"])

    assert response.status_code == 302


def test_an_anonymized_view_hides_the_report_and_refuses_edits(study, member):
    pseudonym = SimpleNamespace(
        given_name="4821", family_name="Anonymous", pseudo_patient_id="ANON-4821"
    )
    permissions = viewer.ViewerContext(
        can_read_report=True,
        can_write_report=True,
        can_download=True,
        pseudonym=pseudonym,
        message="See the nodule.",
    )

    context = viewer.viewer_context(
        study=study, permissions=permissions, urls=member_urls(study)
    )["viewer"]

    assert context["report_readable"] is False
    assert context["report"] is None
    assert context["patient_name"] == "4821 Anonymous"
    assert context["birth_date"] is None
    assert context["message"] == "See the nodule."
    request = RequestFactory().post("/", {"text": "changed"})
    request.user = member
    with pytest.raises(viewer.Http404):
        viewer.report_edit_handle(request, study=study, permissions=permissions)
    assert Report.objects.get(study=study).text == "No pulmonary embolism."


def test_the_message_series_shows_the_message(study, rf):
    from django.template.loader import render_to_string

    permissions = viewer.ViewerContext(
        can_read_report=True, message="Compare with March.", message_from="Dr. Smet"
    )
    context = viewer.viewer_context(
        study=study, permissions=permissions, urls=member_urls(study), show_message=True
    )

    html = render_to_string("studies/viewer/viewer.html", context, request=rf.get("/"))

    assert "viewer-series-message is-active" in html
    assert "Compare with March." in html
    assert "From Dr. Smet" in html
    assert "data-frames" not in html
