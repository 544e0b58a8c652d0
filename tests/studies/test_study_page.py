import datetime

import pytest
from django.urls import reverse

from studies.models import Instance, Report
from tests.factories import (
    DepartmentFactory,
    PatientFactory,
    SeriesFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def department():
    return DepartmentFactory(code="brugge")


@pytest.fixture
def study(department):
    patient = PatientFactory(
        department=department,
        family_name="Claes",
        given_name="Lotte",
        patient_id="BR-1234",
        birth_date=datetime.date(1961, 3, 9),
    )
    study = StudyFactory(
        patient=patient,
        description="CT thorax",
        study_date=datetime.date(2024, 5, 2),
        accession_number="ACC-9",
    )
    series = SeriesFactory(study=study, series_number=3, description="Lung 1mm")
    for i in range(4):
        Instance.objects.create(
            series=series, sop_instance_uid=f"1.2.840.9.{i}", file=f"dicom/{i}.dcm"
        )
    Report.objects.create(study=study, text="Small nodule in the right upper lobe.")
    return study


def test_it_sends_anonymous_visitors_to_login(client, study):
    response = client.get(study.get_absolute_url())

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_shows_patient_series_and_report_to_a_member(client, department, study):
    client.force_login(UserFactory(departments=[department]))

    response = client.get(study.get_absolute_url())

    assert response.status_code == 200
    for text in ("Claes", "Lotte", "BR-1234", "09/03/1961", "CT thorax", "Lung 1mm"):
        assert text in response.text
    assert [s.instance_count for s in response.context["series_list"]] == [4]
    assert "Small nodule in the right upper lobe." in response.text


def test_it_says_when_there_is_no_report(client, department, study):
    Report.objects.filter(study=study).delete()
    client.force_login(UserFactory(departments=[department]))

    response = client.get(study.get_absolute_url())

    assert "No report for this study." in response.text


def test_it_is_not_found_for_a_member_of_another_department(client, study):
    client.force_login(UserFactory(departments=[DepartmentFactory(code="other")]))

    response = client.get(study.get_absolute_url())

    assert response.status_code == 404
    assert "Claes" not in response.text


def test_it_is_not_found_for_a_user_without_department(client, study):
    client.force_login(UserFactory())

    response = client.get(study.get_absolute_url())

    assert response.status_code == 404
