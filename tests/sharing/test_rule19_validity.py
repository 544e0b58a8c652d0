"""Rule 19 with validity: the broadest access and the latest validity hold together.

A user holding write access until D2 and read access until a later D1 keeps
write access until D1: once D2 has passed, the expired write bucket still counts
for its access level while the read bucket of the same study is valid.
"""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing.access.guard import otp_mark_verified
from studies.models import Report
from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    PatientFactory,
    ShareFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

REPORT_TEXT = "No focal lesion."


def _days(n):
    return timezone.localdate() + datetime.timedelta(days=n)


@pytest.fixture
def study():
    department = DepartmentFactory(code="r19-rad", name="Radiology 19")
    study = StudyFactory(patient=PatientFactory(department=department))
    Report.objects.create(study=study, text=REPORT_TEXT)
    return study


@pytest.fixture
def reader(client):
    user = UserFactory(username="r19-reader")
    client.force_login(user)
    client.user = user
    return client


def _bucket(user, study, *, access, valid_until, **share_kwargs):
    require_otp = share_kwargs.pop("require_otp", False)
    revoked = share_kwargs.pop("revoked", False)
    share = ShareFactory(
        source_department=study.department,
        access=access,
        valid_until=valid_until,
        studies=[study],
        **share_kwargs,
    )
    bucket = BucketFactory(share=share, recipient_user=user, require_otp=require_otp)
    if revoked:
        bucket.revoked_at = timezone.now()
        bucket.save(update_fields=["revoked_at"])
    return bucket


def _urls(bucket, study):
    ids = {"bucket_id": bucket.pk, "study_id": study.pk}
    return (
        reverse("sharing:received_study", kwargs=ids),
        reverse("sharing:received_report", kwargs=ids),
    )


def test_it_keeps_write_access_until_the_later_read_validity(reader, study):
    # Write until D2 (yesterday: over), read until D1 (in ten days).
    _bucket(reader.user, study, access="write", valid_until=_days(-1))
    read = _bucket(reader.user, study, access="read", valid_until=_days(10))
    study_url, report_url = _urls(read, study)

    page = reader.get(study_url).content.decode()
    saved = reader.post(report_url, {"text": REPORT_TEXT + " Benign."})

    assert "viewer-report-form" in page
    assert saved.status_code == 302
    assert Report.objects.get(study=study).text == REPORT_TEXT + " Benign."


def test_it_ends_write_access_with_the_last_valid_bucket(reader, study):
    write = _bucket(reader.user, study, access="write", valid_until=_days(-2))
    _bucket(reader.user, study, access="read", valid_until=_days(-1))
    study_url, report_url = _urls(write, study)

    assert reader.get(study_url).status_code == 403
    assert reader.post(report_url, {"text": "Too late"}).status_code == 403
    assert Report.objects.get(study=study).text == REPORT_TEXT


@pytest.mark.parametrize(
    "write_kwargs",
    [
        pytest.param({"anonymize": True}, id="anonymized"),
        pytest.param({"require_otp": True}, id="code-not-entered"),
        pytest.param({"revoked": True}, id="revoked"),
    ],
)
def test_an_expired_write_bucket_that_does_not_open_adds_nothing(
    reader, study, write_kwargs
):
    _bucket(reader.user, study, access="write", valid_until=_days(-1), **write_kwargs)
    read = _bucket(reader.user, study, access="read", valid_until=_days(10))
    study_url, report_url = _urls(read, study)

    page = reader.get(study_url).content.decode()
    refused = reader.post(report_url, {"text": "Changed by a reader"})

    assert REPORT_TEXT in page
    assert "viewer-report-form" not in page
    assert refused.status_code == 404
    assert Report.objects.get(study=study).text == REPORT_TEXT


def test_an_expired_write_bucket_counts_once_its_code_was_entered(reader, study):
    write = _bucket(
        reader.user, study, access="write", valid_until=_days(-1), require_otp=True
    )
    read = _bucket(reader.user, study, access="read", valid_until=_days(10))
    session = reader.session
    request = type("Request", (), {"session": session})()
    otp_mark_verified(request, write)
    session.save()
    study_url, _ = _urls(read, study)

    assert "viewer-report-form" in reader.get(study_url).content.decode()
