"""Every viewer URL of a bucket is authorized on each request and scoped to it."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing.access.guard import SESSION_VERIFIED_KEY
from studies.models import Report
from tests.factories import REPORT_TEXT, StudyFactory, UserFactory, viewer_bucket
from tests.sharing.bucket_viewer_helpers import study_of, viewer_urls

pytestmark = pytest.mark.django_db

STUDY_DATA_TYPES = ("image/", "application/zip")


def _request_all(client, urls):
    responses = {}
    for name, url in urls.items():
        responses[name] = client.get(url)
    responses["report-edit"] = client.post(urls["report"], {"text": "Overwritten"})
    return responses


def _assert_nothing_served(responses, bucket, allowed_statuses):
    for name, response in responses.items():
        assert response.status_code in allowed_statuses, (name, response.status_code)
        content_type = response.get("Content-Type", "")
        assert not content_type.startswith(STUDY_DATA_TYPES), name
        if not getattr(response, "streaming", False):
            assert REPORT_TEXT.encode() not in response.content, name
            assert b"data-viewer" not in response.content, name
    assert Report.objects.get(study=study_of(bucket)).text == REPORT_TEXT


def _expire(bucket):
    share = bucket.share
    share.valid_until = timezone.localdate() - datetime.timedelta(days=3)
    share.save()


def _revoke_bucket(bucket):
    bucket.revoked_at = timezone.now()
    bucket.save()


def _revoke_share(bucket):
    bucket.share.revoked_at = timezone.now()
    bucket.share.save()


def _lock(bucket):
    bucket.locked_at = timezone.now()
    bucket.failed_otp_attempts = 5
    bucket.save()


@pytest.mark.parametrize(
    "spoil",
    [_expire, _revoke_bucket, _revoke_share, _lock],
    ids=["expired", "bucket revoked", "share revoked", "locked"],
)
def test_a_bucket_that_no_longer_opens_serves_nothing(client, spoil):
    bucket = viewer_bucket(access="write")
    urls = viewer_urls(bucket)
    client.force_login(bucket.recipient_user)
    spoil(bucket)

    responses = _request_all(client, urls)

    _assert_nothing_served(responses, bucket, {403})


def test_another_user_gets_not_found_everywhere(client):
    bucket = viewer_bucket(access="write")
    urls = viewer_urls(bucket)
    client.force_login(UserFactory())

    responses = _request_all(client, urls)

    _assert_nothing_served(responses, bucket, {404})


def test_an_anonymous_visitor_is_sent_to_the_login(client):
    bucket = viewer_bucket(access="write")

    responses = _request_all(client, viewer_urls(bucket))

    _assert_nothing_served(responses, bucket, {302})
    assert all("/login/" in r["Location"] for r in responses.values())


def test_without_the_sms_code_nothing_is_served(client):
    bucket = viewer_bucket(access="write", require_otp=True)
    urls = viewer_urls(bucket)
    client.force_login(bucket.recipient_user)

    responses = _request_all(client, urls)

    _assert_nothing_served(responses, bucket, {302, 403})
    code_page = reverse("sharing:bucket_code", kwargs={"bucket_id": bucket.pk})
    assert responses["study"]["Location"] == code_page
    assert responses["download"]["Location"] == code_page
    assert responses["frame"].status_code == 403


def test_with_the_sms_code_entered_in_this_session_it_opens(client):
    bucket = viewer_bucket(require_otp=True)
    urls = viewer_urls(bucket)
    client.force_login(bucket.recipient_user)
    session = client.session
    session[SESSION_VERIFIED_KEY] = [str(bucket.pk)]
    session.save()

    assert client.get(urls["frame"]).status_code == 200
    assert client.get(urls["download"]).status_code == 200


def test_a_code_entered_for_another_bucket_does_not_open_this_one(client):
    bucket = viewer_bucket(require_otp=True)
    other = viewer_bucket(require_otp=True, recipient=bucket.recipient_user)
    client.force_login(bucket.recipient_user)
    session = client.session
    session[SESSION_VERIFIED_KEY] = [str(other.pk)]
    session.save()

    assert client.get(viewer_urls(bucket)["frame"]).status_code == 403


@pytest.fixture
def two_buckets(client):
    """Two valid buckets of one user, each holding a different study."""
    mine = viewer_bucket(access="write")
    user = mine.recipient_user
    theirs = viewer_bucket(access="write", recipient=user)
    client.force_login(user)
    return mine, theirs


def _forged(mine, theirs):
    """URLs under `mine` that name objects of `theirs`."""
    study, other = study_of(mine), study_of(theirs)
    other_ct = other.series.get(modality="CT")
    other_instance = other_ct.instances.first()
    ids = {"bucket_id": mine.pk, "study_id": study.pk}
    return {
        "study of the other share": reverse(
            "sharing:received_study",
            kwargs={"bucket_id": mine.pk, "study_id": other.pk},
        ),
        "download of the other share": reverse(
            "sharing:received_download",
            kwargs={"bucket_id": mine.pk, "study_id": other.pk},
        ),
        "report of the other share": reverse(
            "sharing:received_report",
            kwargs={"bucket_id": mine.pk, "study_id": other.pk},
        ),
        "series of the other share": reverse(
            "sharing:received_series", kwargs={**ids, "series_id": other_ct.pk}
        ),
        "thumbnail of the other share": reverse(
            "sharing:received_thumbnail", kwargs={**ids, "series_id": other_ct.pk}
        ),
        "instance of the other share": reverse(
            "sharing:received_frame",
            kwargs={
                **ids,
                "instance_id": other_instance.pk,
                "frame": 0,
                "fmt": "png",
            },
        ),
        "frame the instance does not have": reverse(
            "sharing:received_frame",
            kwargs={
                **ids,
                "instance_id": study.series.get(modality="CT").instances.first().pk,
                "frame": 1,
                "fmt": "png",
            },
        ),
        "unknown image format": viewer_urls(mine)["frame"].replace(".png", ".gif"),
        "study never shared": reverse(
            "sharing:received_study",
            kwargs={
                "bucket_id": mine.pk,
                "study_id": StudyFactory(patient=study.patient).pk,
            },
        ),
    }


def test_forged_ids_of_another_share_are_not_found(client, two_buckets):
    mine, theirs = two_buckets

    for name, url in _forged(mine, theirs).items():
        response = client.get(url)
        assert response.status_code == 404, name
        assert not response.get("Content-Type", "").startswith(STUDY_DATA_TYPES)
    edit = client.post(
        reverse(
            "sharing:received_report",
            kwargs={"bucket_id": mine.pk, "study_id": study_of(theirs).pk},
        ),
        {"text": "Overwritten"},
    )
    assert edit.status_code == 404
    assert Report.objects.get(study=study_of(theirs)).text == REPORT_TEXT
