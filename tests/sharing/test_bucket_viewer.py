"""The study viewer through a bucket: images, message, report and download."""

import html
import io
import json
import re

import pydicom
import pytest
from django.urls import reverse
from PIL import Image

from sharing.models import AuditEvent, BucketOpening, Pseudonym
from studies.message_sr import BASIC_TEXT_SR, message_text
from studies.models import Report, ReportRevision
from tests.factories import (
    MESSAGE,
    REPORT_TEXT,
    BucketFactory,
    UserFactory,
    UserGroupFactory,
    viewer_bucket,
)
from tests.sharing.bucket_viewer_helpers import study_of, viewer_urls, zip_of

pytestmark = pytest.mark.django_db


def _opened(client, bucket):
    client.force_login(bucket.recipient_user)
    return viewer_urls(bucket)


def _events(bucket, action):
    return AuditEvent.objects.filter(bucket=bucket, action=action)


def _frame_urls(page_html):
    found = re.findall(r'data-frames="([^"]+)"', page_html)
    return [url for item in found for url in json.loads(html.unescape(item))]


def test_it_shows_the_viewer_with_urls_under_the_bucket(client):
    bucket = viewer_bucket(access="read")
    urls = _opened(client, bucket)
    prefix = f"/received/{bucket.pk}/studies/{study_of(bucket).pk}/"

    response = client.get(urls["study"])

    page = response.text
    assert response.status_code == 200
    assert "data-viewer" in page
    frames = _frame_urls(page)
    assert len(frames) == 2  # the two CT images, first series with images
    assert all(url.startswith(prefix + "instances/") for url in frames)
    thumbnails = re.findall(r'class="viewer-thumb" src="([^"]+)"', page)
    assert len(thumbnails) == 2 and all(t.startswith(prefix) for t in thumbnails)
    assert f'href="{urls["download"]}"' in page
    assert f'href="{urls["message"]}"' in page  # the "Message" series
    assert "/studies/studies/" not in page and 'href="/studies/' not in page


def test_the_frames_and_thumbnails_are_images_private_to_the_user(client):
    bucket = viewer_bucket()
    urls = _opened(client, bucket)

    frame = client.get(urls["frame"])
    thumbnail = client.get(urls["thumbnail"])

    assert frame.status_code == 200 and frame["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(frame.content)).size == (128, 128)  # CT_small
    assert "private" in frame["Cache-Control"]
    assert "public" not in frame["Cache-Control"]
    assert "Cookie" in frame["Vary"]
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/png"
    assert "private" in thumbnail["Cache-Control"] and "Cookie" in thumbnail["Vary"]
    again = client.get(urls["frame"], HTTP_IF_NONE_MATCH=frame["ETag"])
    assert again.status_code == 304


def test_a_series_page_shows_that_series(client):
    bucket = viewer_bucket()
    urls = _opened(client, bucket)

    response = client.get(urls["series"])

    assert response.status_code == 200
    assert 'aria-current="true"' in response.text
    frames = _frame_urls(response.text)
    assert len(frames) == 1  # the MR series has one image
    mr = study_of(bucket).series.get(modality="MR")
    assert f"/instances/{mr.instances.get().pk}/frames/0.png" in frames[0]


def test_the_message_is_a_series_of_its_own(client):
    bucket = viewer_bucket()
    urls = _opened(client, bucket)

    response = client.get(urls["message"])

    assert response.status_code == 200
    page = response.text
    assert "viewer-series-message is-active" in page
    assert page.count(MESSAGE) == 1 and "From Dr. Anna Claes" in page
    assert _frame_urls(page) == []  # the message replaces the images


def test_a_share_without_message_has_no_message_series(client):
    bucket = viewer_bucket(message="")
    urls = _opened(client, bucket)

    assert "viewer-series-message" not in client.get(urls["study"]).text
    assert client.get(urls["message"]).status_code == 404


def test_opening_any_page_of_the_study_marks_the_message_read_once(client):
    bucket = viewer_bucket()
    urls = _opened(client, bucket)
    user = bucket.recipient_user

    client.get(urls["series"])  # a bookmarked series, before the study page
    opened = BucketOpening.objects.filter(bucket=bucket, user=user).count()
    client.get(urls["message"])
    client.get(urls["study"])

    assert opened == 1
    assert BucketOpening.objects.filter(bucket=bucket, user=user).count() == 1
    shared = client.get(reverse("sharing:shared_with_me")).text
    assert "badge-message-read" in shared and "badge-message-unread" not in shared


def test_read_access_shows_the_report_and_audits_each_reading(client):
    bucket = viewer_bucket(access="read")
    urls = _opened(client, bucket)

    page = client.get(urls["study"]).text
    report_page = client.get(urls["report"])

    assert REPORT_TEXT in page and "viewer-report-form" not in page
    assert report_page.status_code == 200 and REPORT_TEXT in report_page.text
    assert _events(bucket, "report_read").count() == 2
    event = _events(bucket, "report_read").first()
    assert event.actor == bucket.recipient_user
    assert event.study_uids == [study_of(bucket).study_instance_uid]


def test_read_access_cannot_edit_the_report(client, django_capture_on_commit_callbacks):
    bucket = viewer_bucket(access="read")
    urls = _opened(client, bucket)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(urls["report"], {"text": "Changed by a reader"})

    assert response.status_code in (403, 404)
    assert Report.objects.get(study=study_of(bucket)).text == REPORT_TEXT
    assert not ReportRevision.objects.exists()
    assert not _events(bucket, "report_edited").exists()


def test_write_access_edits_the_report_as_an_audited_revision(
    client, django_capture_on_commit_callbacks
):
    bucket = viewer_bucket(access="write")
    urls = _opened(client, bucket)
    user = bucket.recipient_user

    assert "viewer-report-form" in client.get(urls["study"]).text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(urls["report"], {"text": REPORT_TEXT + " Benign."})

    assert response.status_code == 302
    assert response["Location"] == urls["study"] + "#viewer-report"
    report = Report.objects.get(study=study_of(bucket))
    assert report.text == REPORT_TEXT + " Benign."
    assert report.updated_by == user
    revision = ReportRevision.objects.filter(report=report).first()
    assert revision.author == user and revision.created_at is not None
    (event,) = _events(bucket, "report_edited")
    assert event.actor == user and event.details["revision"] == revision.pk
    assert event.department == bucket.share.source_department
    assert event.ip_address == "127.0.0.1"
    page = client.get(urls["study"]).text
    assert "2 revisions" in page and "Benign." in page


def test_images_only_access_has_no_report(client):
    group = UserGroupFactory()
    member = UserFactory()
    group.members.add(member)
    bucket = viewer_bucket(access="images", bucket_kwargs={"recipient_group": group})
    client.force_login(member)
    urls = viewer_urls(bucket)

    page = client.get(urls["study"]).text

    assert "data-viewer" in page
    assert REPORT_TEXT not in page and "viewer-report" not in page
    assert client.get(urls["report"]).status_code == 404


@pytest.mark.parametrize("access", ["read", "write"])
def test_an_anonymized_bucket_never_shows_the_report(
    client, access, django_capture_on_commit_callbacks
):
    bucket = viewer_bucket(access=access, anonymize=True)
    urls = _opened(client, bucket)

    pages = [client.get(urls[name]).text for name in ("study", "series", "message")]
    read = client.get(urls["report"])
    with django_capture_on_commit_callbacks(execute=True):
        edit = client.post(urls["report"], {"text": "Overwritten"})

    for page in pages:
        assert "data-viewer" in page
        assert REPORT_TEXT not in page and "pulmonary" not in page
        assert "viewer-report" not in page and urls["report"] not in page
        assert "Peeters" not in page
    assert read.status_code == 404 and REPORT_TEXT not in read.text
    assert edit.status_code == 404
    assert Report.objects.get(study=study_of(bucket)).text == REPORT_TEXT
    assert not _events(bucket, "report_read").exists()
    assert not _events(bucket, "report_edited").exists()


def test_an_anonymized_bucket_shows_the_pseudonym_in_the_viewer(client):
    bucket = viewer_bucket(anonymize=True)
    urls = _opened(client, bucket)

    page = client.get(urls["study"]).text

    pseudonym = Pseudonym.objects.get(bucket=bucket)
    assert pseudonym.given_name in page and pseudonym.pseudo_patient_id in page
    assert "Peeters" not in page and "17/05/1970" not in page
    assert "ACC-5521" not in page


def test_the_anonymized_download_holds_nothing_of_the_patient_but_the_message(client):
    bucket = viewer_bucket(anonymize=True)
    urls = _opened(client, bucket)
    study = study_of(bucket)
    patient = study.patient
    originals = {study.study_instance_uid}
    for series in study.series.all():
        originals.add(series.series_instance_uid)
        for instance in series.instances.all():
            originals.add(instance.sop_instance_uid)
            with instance.file.open("rb") as fh:
                originals.add(str(pydicom.dcmread(fh).FrameOfReferenceUID))

    response = client.get(urls["download"])

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "private" in response["Cache-Control"]
    archive = zip_of(response)
    datasets = []
    for name in archive.namelist():
        raw = archive.read(name)
        for secret in (
            patient.family_name,
            patient.given_name,
            patient.patient_id,
            "19700517",
            "ACC-5521",
            "Sint-Jan",
            "Janssens",
            *originals,
        ):
            assert secret.encode() not in raw, (name, secret)
        datasets.append(pydicom.dcmread(io.BytesIO(raw)))
    pseudonym = Pseudonym.objects.get(bucket=bucket, patient=patient)
    assert len(datasets) == 4  # 3 images and the message
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    for ds in datasets:
        assert str(ds.PatientName) == f"Anonymous^{pseudonym.given_name}"
        assert ds.PatientID == pseudonym.pseudo_patient_id
        assert ds.PatientIdentityRemoved == "YES"
    (message,) = [ds for ds in datasets if ds.SOPClassUID == BASIC_TEXT_SR]
    assert message_text(message) == MESSAGE
    assert message.SeriesDescription == "Message"
    (event,) = _events(bucket, "downloaded")
    assert event.actor == bucket.recipient_user
    assert event.details == {"anonymized": True}


def test_the_same_bucket_downloads_the_same_pseudonymous_uids(client):
    bucket = viewer_bucket(anonymize=True)
    urls = _opened(client, bucket)

    first = zip_of(client.get(urls["download"]))
    second = zip_of(client.get(urls["download"]))

    def uids(archive):
        return sorted(
            pydicom.dcmread(io.BytesIO(archive.read(n))).SOPInstanceUID
            for n in archive.namelist()
        )

    assert uids(first) == uids(second)
    assert _events(bucket, "downloaded").count() == 2


def test_a_plain_download_keeps_the_files_and_adds_the_message(client):
    bucket = viewer_bucket()
    urls = _opened(client, bucket)
    study = study_of(bucket)

    archive = zip_of(client.get(urls["download"]))

    datasets = [
        pydicom.dcmread(io.BytesIO(archive.read(n))) for n in archive.namelist()
    ]
    assert len(datasets) == 4
    assert {ds.StudyInstanceUID for ds in datasets} == {study.study_instance_uid}
    (message,) = [ds for ds in datasets if ds.SOPClassUID == BASIC_TEXT_SR]
    assert message_text(message) == MESSAGE
    assert str(message.PatientName) == "Peeters^Jan"
    assert _events(bucket, "downloaded").get().details == {"anonymized": False}


def test_rule_19_a_broader_bucket_of_the_same_study_lets_the_user_write(client):
    reader = viewer_bucket(access="read")
    user = reader.recipient_user
    BucketFactory(
        share__studies=[study_of(reader)],
        share__access="write",
        recipient_user=user,
        require_otp=False,
    )
    locked_out = viewer_bucket(access="read", recipient=UserFactory())
    BucketFactory(
        share__studies=[study_of(locked_out)],
        share__access="write",
        recipient_user=locked_out.recipient_user,
        require_otp=True,  # its code was never entered in this session
    )

    client.force_login(user)
    assert "viewer-report-form" in client.get(viewer_urls(reader)["study"]).text
    client.force_login(locked_out.recipient_user)
    page = client.get(viewer_urls(locked_out)["study"]).text
    assert REPORT_TEXT in page and "viewer-report-form" not in page


def test_a_members_report_edit_is_audited_for_the_department(
    client, django_capture_on_commit_callbacks
):
    bucket = viewer_bucket()
    study = study_of(bucket)
    member = UserFactory(departments=[study.department])
    client.force_login(member)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("studies:report_edit", args=[study.pk]), {"text": "New"})

    (event,) = AuditEvent.objects.filter(action="report_edited")
    assert event.actor == member and event.bucket is None
    assert event.department == study.department
