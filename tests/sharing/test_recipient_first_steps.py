"""The recipient's first steps (issue 14, item 10): where a login lands, the
language it takes, the study a code leads to, plural wording, the facts of a
multi-study share."""

import datetime

import pytest
from django.core import mail
from django.urls import reverse

from sharing.models import Label
from tests.factories import (
    PASSWORD,
    DepartmentFactory,
    StudyFactory,
    UserFactory,
    make_bucket,
    share_through_service,
)
from tests.sharing.access_helpers import CODE_RE

pytestmark = pytest.mark.django_db


def login(client, user, **extra):
    return client.post(
        reverse("login"), {"username": user.username, "password": PASSWORD, **extra}
    )


def test_a_user_of_no_department_lands_on_shared_with_me(client):
    recipient = UserFactory(username="gp")

    response = login(client, recipient)

    assert response.status_code == 302
    assert response["Location"] == reverse("sharing:shared_with_me")


def test_a_department_member_still_lands_on_the_department_studies(client):
    member = UserFactory(username="radiologist", departments=[DepartmentFactory()])

    response = login(client, member)

    assert response["Location"] == reverse("studies:overview")


def test_the_interface_follows_the_profile_language_and_the_switcher_wins(client):
    recipient = UserFactory(username="huisarts", language="nl")

    landed = client.get(login(client, recipient)["Location"])
    assert landed.status_code == 200
    assert '<html lang="nl"' in landed.content.decode()

    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    switched = client.get(reverse("sharing:shared_with_me"))
    assert '<html lang="fr"' in switched.content.decode()


def _two_study_bucket(**share_kwargs):
    bucket = make_bucket(require_otp=True, **share_kwargs)
    study = bucket.share.studies.get()
    second = StudyFactory(patient=study.patient, description="MR knee")
    bucket.share.studies.add(second)
    return bucket, second


def test_after_the_code_the_recipient_lands_on_the_study_they_asked_for(
    client, sms_outbox, django_capture_on_commit_callbacks
):
    bucket, second = _two_study_bucket()
    client.force_login(bucket.recipient_user)
    study_url = reverse(
        "sharing:received_study", kwargs={"bucket_id": bucket.pk, "study_id": second.pk}
    )
    code_url = reverse("sharing:bucket_code", kwargs={"bucket_id": bucket.pk})

    asked = client.get(study_url)
    assert asked["Location"] == code_url
    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(code_url)
    code = CODE_RE.search(sms_outbox[-1].body).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        opened = client.post(code_url, {"code": code})

    assert opened.status_code == 302
    assert opened["Location"] == study_url
    assert "shared 2 studies with you" in page.content.decode()


def test_the_code_page_of_one_study_says_a_study(
    client, sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket(require_otp=True)
    client.force_login(bucket.recipient_user)

    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(reverse("sharing:bucket_code", args=[bucket.pk]))

    assert "shared a study with you" in page.content.decode()


def test_the_mail_subject_counts_the_exams(django_capture_on_commit_callbacks):
    department = DepartmentFactory()
    sender = UserFactory(
        title="Dr.", first_name="Anna", last_name="Claes", departments=[department]
    )
    studies = [StudyFactory(patient__department=department) for _ in range(3)]
    recipient = UserFactory(email="gp@example.org")

    with django_capture_on_commit_callbacks(execute=True):
        share_through_service(
            sender=sender,
            studies=studies,
            recipient=recipient,
            recipient_options={"require_otp": False},
        )

    assert [m.subject for m in mail.outbox] == [
        "Dr. Anna Claes shared 3 exams with you"
    ]


def test_a_multi_study_share_shows_its_validity_and_label(client):
    department = DepartmentFactory()
    label = Label.objects.create(department=department, name="Oncology")
    bucket = make_bucket(
        require_otp=False,
        department=department,
        valid_until=datetime.date(2031, 7, 14),
        label=label,
        label_scope="user",
    )
    bucket.share.studies.add(StudyFactory(patient=bucket.share.studies.get().patient))
    client.force_login(bucket.recipient_user)

    page = client.get(reverse("sharing:received", args=[bucket.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert "Valid till" in html and "14/07/2031" in html
    assert "Oncology" in html
    assert "Confidential reason" not in html
