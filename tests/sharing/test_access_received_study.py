"""The received study page: exam header, the sender's message, share facts."""

import pytest
from django.urls import reverse

from sharing.models import AuditEvent, BucketOpening, Pseudonym
from tests.factories import (
    BucketFactory,
    PatientFactory,
    ShareFactory,
    StudyFactory,
    make_bucket,
)

pytestmark = pytest.mark.django_db


def study_url(bucket):
    return reverse(
        "sharing:received_study",
        kwargs={"bucket_id": bucket.pk, "study_id": bucket.share.studies.get().pk},
    )


def test_it_shows_the_exam_header_message_and_share_facts(client):
    bucket = make_bucket(require_otp=False, urgent=True, access="write")
    client.force_login(bucket.recipient_user)

    response = client.get(study_url(bucket))

    content = response.content.decode()
    assert response.status_code == 200
    assert "Peeters" in content and "Jan" in content
    assert "CT thorax" in content and "Axial 1mm" in content
    assert "Message from Dr. Anna Claes" in content
    assert "Please look at the left lower lobe." in content
    assert "Radiologie AZ Sint-Jan" in content
    assert "Images and write access to the report" in content
    assert "Urgent" in content
    assert "Confidential reason XYZZY" not in content  # rule 6
    assert 'id="viewer-title"' in content
    assert response["Cache-Control"].startswith("max-age=0")


def test_an_anonymized_bucket_shows_the_pseudonym_only(client):
    bucket = make_bucket(require_otp=False, anonymize=True)
    client.force_login(bucket.recipient_user)

    response = client.get(study_url(bucket))

    content = response.content.decode()
    pseudonym = Pseudonym.objects.get(bucket=bucket)
    assert "Anonymous" in content and pseudonym.given_name in content
    assert pseudonym.given_name.isdigit()
    assert "Peeters" not in content
    assert ">Jan<" not in content and ", Jan" not in content
    assert "17/05/1970" not in content  # the birth date
    assert "report is not available" in content


def test_share_further_shows_only_when_allowed(client):
    allowed = make_bucket(require_otp=False, allow_further_sharing=True)
    denied = make_bucket(require_otp=False, allow_further_sharing=False)
    reshare = reverse("sharing:reshare_start", kwargs={"bucket_id": allowed.pk})

    client.force_login(allowed.recipient_user)
    assert reshare in client.get(study_url(allowed)).content.decode()
    client.force_login(denied.recipient_user)
    content = client.get(study_url(denied)).content.decode()
    assert "Share further" not in content


def test_opening_is_recorded_once_and_audited_each_time(client):
    bucket = make_bucket(require_otp=False)
    client.force_login(bucket.recipient_user)

    client.get(study_url(bucket))
    client.get(study_url(bucket))

    assert BucketOpening.objects.filter(bucket=bucket).count() == 1
    events = AuditEvent.objects.filter(action="bucket_opened", bucket=bucket)
    assert events.count() == 2
    assert events.first().study_uids == [bucket.share.studies.get().study_instance_uid]


def test_a_bucket_with_one_study_opens_it_directly(client):
    bucket = make_bucket(require_otp=False)
    client.force_login(bucket.recipient_user)

    response = client.get(reverse("sharing:received", kwargs={"bucket_id": bucket.pk}))

    assert response.status_code == 302
    assert response["Location"] == study_url(bucket)


def test_a_bucket_with_several_studies_lists_them(client):
    bucket = make_bucket(require_otp=False)
    department = bucket.share.source_department
    second = StudyFactory(
        patient=PatientFactory(department=department, family_name="Janssens"),
        description="MR knee",
    )
    bucket.share.studies.add(second)
    client.force_login(bucket.recipient_user)

    response = client.get(reverse("sharing:received", kwargs={"bucket_id": bucket.pk}))

    content = response.content.decode()
    assert response.status_code == 200
    assert "Peeters" in content and "Janssens" in content and "MR knee" in content


def test_it_hides_the_institution_of_an_anonymized_study(client):
    study = StudyFactory(institution_name="AZ Sint-Jan Brugge")
    bucket = BucketFactory(
        share=ShareFactory(
            anonymize=True, source_department=study.department, studies=[study]
        )
    )
    client.force_login(bucket.recipient_user)

    response = client.get(
        reverse(
            "sharing:received_study",
            kwargs={"bucket_id": bucket.pk, "study_id": study.pk},
        )
    )

    assert response.status_code == 200
    assert "Sint-Jan" not in response.content.decode()
    assert study.patient.family_name not in response.content.decode()
