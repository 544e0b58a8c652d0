"""Rule 19 through the pages: the broadest access of the user's buckets counts.

A user may hold the same study through several buckets: sent to them, to one of
their groups or to one of their departments. Whichever bucket they open it
through, the report answers to the broadest access among their buckets that are
valid now (not expired, revoked or locked), not anonymized, and open in this
session (the SMS code entered where one is asked). An anonymized bucket itself
never shows the report.
"""

import datetime
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from recipients.models import Membership
from sharing.access.guard import otp_mark_verified
from studies.models import Report, ReportRevision
from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    PatientFactory,
    SeriesFactory,
    ShareFactory,
    StudyFactory,
    UserFactory,
    UserGroupFactory,
)

pytestmark = pytest.mark.django_db

REPORT_TEXT = "No pulmonary embolism. Nodule of 4 mm in the left lower lobe."
EDITED = REPORT_TEXT + " Benign, no follow-up."


@pytest.fixture
def study():
    department = DepartmentFactory(code="rule19-rad", name="Radiology Rule 19")
    patient = PatientFactory(
        department=department, given_name="Jan", family_name="Peeters"
    )
    study = StudyFactory(patient=patient, description="CT thorax")
    SeriesFactory(study=study, description="Axial 1mm")
    Report.objects.create(study=study, text=REPORT_TEXT)
    return study


@pytest.fixture
def reader():
    return UserFactory(username="rule19-reader")


@pytest.fixture
def signed_in(client, reader):
    client.force_login(reader)
    return client


def _bucket(study, *, access, days, anonymize=False, **bucket_kwargs):
    """Return a bucket of a share of `study` with `access`, valid `days` more days."""
    share = ShareFactory(
        source_department=study.department,
        studies=[study],
        access=access,
        anonymize=anonymize,
        valid_until=timezone.localdate() + datetime.timedelta(days=days),
    )
    return BucketFactory(share=share, **bucket_kwargs)


def _urls(bucket, study):
    ids = {"bucket_id": bucket.pk, "study_id": study.pk}
    return SimpleNamespace(
        study=reverse("sharing:received_study", kwargs=ids),
        report=reverse("sharing:received_report", kwargs=ids),
        download=reverse("sharing:received_download", kwargs=ids),
    )


def _edit(client, bucket, study):
    return client.post(_urls(bucket, study).report, {"text": EDITED})


def _report_text(study):
    return Report.objects.get(study=study).text


def _enter_code(client, bucket):
    """Do what the code page does once the right SMS code was entered."""
    session = client.session
    otp_mark_verified(SimpleNamespace(session=session), bucket)
    session.save()


def _assert_edit_saved(response, client, bucket, study, reader):
    assert response.status_code == 302
    assert response["Location"] == _urls(bucket, study).study + "#viewer-report"
    assert _report_text(study) == EDITED
    assert ReportRevision.objects.filter(
        report__study=study, author=reader, text=EDITED
    ).exists()


def _assert_read_only(client, bucket, study):
    urls = _urls(bucket, study)
    report_page = client.get(urls.report)
    assert report_page.status_code == 200
    assert REPORT_TEXT in report_page.text
    assert "viewer-report-form" not in client.get(urls.study).text

    response = _edit(client, bucket, study)

    assert response.status_code == 404
    assert _report_text(study) == REPORT_TEXT
    assert not ReportRevision.objects.filter(text=EDITED).exists()


# -- a write bucket for 3 days beside a read bucket for 30 -------------------------


@pytest.fixture
def short_write_long_read(study, reader):
    write = _bucket(study, access="write", days=3, recipient_user=reader)
    read = _bucket(study, access="read", days=30, recipient_user=reader)
    return write, read


def test_the_read_bucket_edits_while_the_write_bucket_is_valid(
    signed_in, study, reader, short_write_long_read
):
    _write, read = short_write_long_read

    assert "viewer-report-form" in signed_in.get(_urls(read, study).study).text
    response = _edit(signed_in, read, study)

    _assert_edit_saved(response, signed_in, read, study, reader)


def test_the_write_bucket_itself_edits(signed_in, study, reader, short_write_long_read):
    write, _read = short_write_long_read

    response = _edit(signed_in, write, study)

    _assert_edit_saved(response, signed_in, write, study, reader)


def _expire(bucket):
    share = bucket.share
    share.valid_until = timezone.localdate() - datetime.timedelta(days=1)
    share.save()


def _revoke(bucket):
    bucket.revoked_at = timezone.now()
    bucket.save()


def _revoke_share(bucket):
    share = bucket.share
    share.revoked_at = timezone.now()
    share.save()


def _lock(bucket):
    bucket.locked_at = timezone.now()
    bucket.save()


# An expired write bucket still counts while the read bucket is valid (rule 19:
# the broadest access and the latest validity hold together, test_rule19_validity).
@pytest.mark.parametrize(
    "end", [_revoke, _revoke_share, _lock], ids=lambda f: f.__name__[1:]
)
def test_once_the_write_bucket_ends_only_reading_is_left(
    signed_in, study, short_write_long_read, end
):
    write, read = short_write_long_read
    end(write)

    _assert_read_only(signed_in, read, study)
    # The ended bucket itself opens nothing.
    assert signed_in.get(_urls(write, study).report).status_code == 403
    assert _edit(signed_in, write, study).status_code == 403
    assert _report_text(study) == REPORT_TEXT


def test_the_download_stays_through_the_read_bucket_once_the_write_bucket_ended(
    signed_in, study, short_write_long_read
):
    write, read = short_write_long_read
    _expire(write)

    response = signed_in.get(_urls(read, study).download)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"


# -- buckets through the user's group and department -------------------------------


def _through_group(reader):
    group = UserGroupFactory(name="Rule 19 tumour board")
    group.members.add(reader)
    return {"recipient_user": None, "recipient_group": group}


def _through_department(reader):
    department = DepartmentFactory(code="rule19-pneumo", name="Pneumology")
    Membership.objects.create(user=reader, department=department)
    return {"recipient_user": None, "recipient_department": department}


@pytest.mark.parametrize(
    "through", [_through_group, _through_department], ids=["group", "department"]
)
def test_a_write_bucket_through_the_users_group_or_department_counts(
    signed_in, study, reader, through
):
    _bucket(study, access="write", days=3, **through(reader))
    read = _bucket(study, access="read", days=30, recipient_user=reader)

    response = _edit(signed_in, read, study)

    _assert_edit_saved(response, signed_in, read, study, reader)


def test_a_write_bucket_of_a_group_the_user_is_not_in_adds_nothing(
    signed_in, study, reader
):
    outsiders = UserGroupFactory(name="Rule 19 outsiders")
    outsiders.members.add(UserFactory(username="rule19-outsider"))
    _bucket(
        study, access="write", days=3, recipient_user=None, recipient_group=outsiders
    )
    read = _bucket(study, access="read", days=30, recipient_user=reader)

    _assert_read_only(signed_in, read, study)


def test_a_read_bucket_through_the_group_is_read_only_with_the_others_ended(
    signed_in, study, reader
):
    write = _bucket(study, access="write", days=3, recipient_user=reader)
    read = _bucket(study, access="read", days=30, **_through_group(reader))
    _lock(write)

    _assert_read_only(signed_in, read, study)


# -- anonymized buckets ------------------------------------------------------------


def test_an_anonymized_bucket_never_shows_the_report(signed_in, study, reader):
    anonymized = _bucket(
        study, access="write", days=30, anonymize=True, recipient_user=reader
    )
    plain = _bucket(study, access="write", days=30, recipient_user=reader)
    urls = _urls(anonymized, study)

    assert signed_in.get(urls.report).status_code == 404
    assert _edit(signed_in, anonymized, study).status_code == 404
    page = signed_in.get(urls.study)
    assert page.status_code == 200
    assert REPORT_TEXT not in page.text and "viewer-report-form" not in page.text
    assert _report_text(study) == REPORT_TEXT

    # Through the plain bucket the same user reads and edits it.
    report_page = signed_in.get(_urls(plain, study).report)
    assert report_page.status_code == 200 and REPORT_TEXT in report_page.text
    response = _edit(signed_in, plain, study)
    _assert_edit_saved(response, signed_in, plain, study, reader)


def test_an_anonymized_write_bucket_adds_nothing_to_a_read_bucket(
    signed_in, study, reader
):
    _bucket(study, access="write", days=30, anonymize=True, recipient_user=reader)
    read = _bucket(study, access="read", days=30, recipient_user=reader)

    _assert_read_only(signed_in, read, study)


# -- two-factor buckets ------------------------------------------------------------


def test_a_write_bucket_whose_code_was_not_entered_adds_nothing(
    signed_in, study, reader
):
    _bucket(study, access="write", days=3, recipient_user=reader, require_otp=True)
    read = _bucket(study, access="read", days=30, recipient_user=reader)

    _assert_read_only(signed_in, read, study)


def test_a_write_bucket_whose_code_was_entered_counts(signed_in, study, reader):
    write = _bucket(
        study, access="write", days=3, recipient_user=reader, require_otp=True
    )
    read = _bucket(study, access="read", days=30, recipient_user=reader)
    _enter_code(signed_in, write)

    response = _edit(signed_in, read, study)

    _assert_edit_saved(response, signed_in, read, study, reader)


def test_a_code_entered_for_another_bucket_opens_nothing_more(signed_in, study, reader):
    _bucket(study, access="write", days=3, recipient_user=reader, require_otp=True)
    read = _bucket(
        study, access="read", days=30, recipient_user=reader, require_otp=True
    )
    _enter_code(signed_in, read)

    _assert_read_only(signed_in, read, study)
