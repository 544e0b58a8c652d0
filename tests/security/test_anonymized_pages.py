"""An anonymized bucket's pages show no more than its de-identified download."""

import pytest
from django.urls import reverse

from tests.factories import BucketFactory, ShareFactory, StudyFactory

pytestmark = pytest.mark.django_db


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
