"""Status Forwarding must not give a re-sharer of anonymized data the patient."""

import pytest
from django.urls import reverse

from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    ShareFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PAGE = reverse("sharing:status_forwarding")


@pytest.fixture
def reshare():
    """Department A shares anonymized with an outsider, who shares it on."""
    department = DepartmentFactory()
    sender = UserFactory(departments=[department])
    outsider = UserFactory()
    study = StudyFactory(
        patient__department=department, patient__family_name="Vandermeulen"
    )
    parent = BucketFactory(
        share=ShareFactory(
            sender=sender,
            source_department=department,
            anonymize=True,
            allow_further_sharing=True,
            studies=[study],
        ),
        recipient_user=outsider,
    )
    child = BucketFactory(
        share=ShareFactory(
            sender=outsider,
            source_department=department,
            anonymize=True,
            parent_bucket=parent,
            studies=[study],
        ),
    )
    return outsider, child, study


def test_it_hides_the_patient_from_a_resharer_of_anonymized_data(client, reshare):
    outsider, child, study = reshare
    client.force_login(outsider)

    response = client.get(PAGE)

    assert [row["bucket"].pk for row in response.context["rows"]] == [child.pk]
    content = response.content.decode()
    assert study.patient.family_name not in content
    assert study.patient.patient_id not in content


def test_it_does_not_let_a_resharer_search_the_real_patient_name(client, reshare):
    outsider, child, study = reshare
    client.force_login(outsider)

    found = client.get(PAGE, {"q": study.patient.family_name})
    other = client.get(PAGE, {"q": "Nobodyatall"})

    assert len(found.context["rows"]) == len(other.context["rows"]) == 0
