import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from studies.models import Instance, Report
from tests.factories import (
    DepartmentFactory,
    PatientFactory,
    SeriesFactory,
    StudyFactory,
    UserFactory,
    study_recount,
)

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("studies:overview")


@pytest.fixture
def department():
    return DepartmentFactory(name="Radiology Leuven", code="leuven")


@pytest.fixture
def member(client, department):
    user = UserFactory(departments=[department])
    client.force_login(user)
    return user


def _rows(response):
    return list(response.context["studies"])


def _study(department, *, day, **kwargs):
    patient_fields = {
        key: kwargs.pop(key)
        for key in ("family_name", "given_name", "patient_id")
        if key in kwargs
    }
    patient = PatientFactory(department=department, **patient_fields)
    return StudyFactory(
        patient=patient, study_date=datetime.date(2024, 1, day), **kwargs
    )


def test_it_sends_anonymous_visitors_to_login(client):
    response = client.get(OVERVIEW)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_lists_the_studies_of_my_department(client, member, department):
    study = _study(department, day=3, family_name="Janssens", description="MR knee")

    response = client.get(OVERVIEW)

    assert response.status_code == 200
    assert _rows(response) == [study]
    assert "Janssens" in response.text
    assert "MR knee" in response.text


def test_it_never_shows_another_departments_studies(client, member, department):
    mine = _study(department, day=3, family_name="Mertens")
    other_department = DepartmentFactory(code="ghent")
    _study(other_department, day=4, family_name="Verstraeten", description="Secret CT")

    response = client.get(OVERVIEW)

    assert _rows(response) == [mine]
    assert "Verstraeten" not in response.text
    assert "Secret CT" not in response.text


def test_it_lists_newest_studies_first(client, member, department):
    middle = _study(department, day=10)
    newest = _study(department, day=20)
    oldest = _study(department, day=1)
    undated = StudyFactory(
        patient=PatientFactory(department=department), study_date=None
    )

    response = client.get(OVERVIEW)

    assert _rows(response) == [newest, middle, oldest, undated]


def test_it_paginates_by_25(client, member, department):
    for day in range(1, 28):
        _study(department, day=day)

    first = client.get(OVERVIEW)
    second = client.get(OVERVIEW, {"page": 2})

    assert len(_rows(first)) == 25
    assert [s.study_date.day for s in _rows(second)] == [2, 1]
    assert "Page 2 of 2" in second.text


def test_it_keeps_filters_when_paging(client, member, department):
    for day in range(1, 28):
        _study(department, day=day, description="CT abdomen")

    response = client.get(OVERVIEW, {"description": "abdomen"})

    assert "description=abdomen&amp;page=2" in response.text


@pytest.mark.parametrize("query", ["peet", "PEETERS", "jan peet", "PID-77"])
def test_it_filters_by_patient_name_or_id(client, member, department, query):
    wanted = _study(
        department, day=5, family_name="Peeters", given_name="Jan", patient_id="PID-77"
    )
    _study(department, day=6, family_name="Dubois", given_name="Marie", patient_id="X1")

    response = client.get(OVERVIEW, {"patient": query})

    assert _rows(response) == [wanted]


def test_it_filters_by_date_range(client, member, department):
    _study(department, day=1)
    inside = [_study(department, day=10), _study(department, day=15)]
    _study(department, day=25)

    response = client.get(
        OVERVIEW, {"date_from": "2024-01-10", "date_to": "2024-01-15"}
    )

    assert _rows(response) == inside[::-1]


def test_it_filters_by_modality(client, member, department):
    mr = _study(department, day=1, modalities="MR")
    ct_and_pet = _study(department, day=2, modalities="CT,PT")
    _study(department, day=3, modalities="PCT")  # "CT" inside, but not the CT modality

    response = client.get(OVERVIEW, {"modality": "CT"})

    assert _rows(response) == [ct_and_pet]
    assert 'value="MR"' in response.text  # the choices come from my studies
    assert _rows(client.get(OVERVIEW, {"modality": "MR"})) == [mr]


def test_it_filters_by_description(client, member, department):
    wanted = _study(department, day=1, description="CT Thorax with contrast")
    _study(department, day=2, description="MR brain")

    response = client.get(OVERVIEW, {"description": "thorax"})

    assert _rows(response) == [wanted]


def test_it_says_when_no_study_matches(client, member, department):
    _study(department, day=1, description="MR brain")

    response = client.get(OVERVIEW, {"description": "knee"})

    assert _rows(response) == []
    assert "No study matches these filters" in response.text


def test_it_shows_an_error_for_a_bad_date_instead_of_failing(
    client, member, department
):
    _study(department, day=1)

    response = client.get(OVERVIEW, {"date_from": "31/02/2024x"})

    assert response.status_code == 200
    assert "Enter a valid date." in response.text
    assert len(_rows(response)) == 1


def test_it_refuses_an_end_date_before_the_start_date(client, member, department):
    response = client.get(
        OVERVIEW, {"date_from": "2024-02-01", "date_to": "2024-01-01"}
    )

    assert response.status_code == 200
    assert "The end date is before the start date." in response.text


def test_it_shows_series_and_image_counts_and_the_report(client, member, department):
    study = _study(department, day=1)
    for number in (1, 2):
        series = SeriesFactory(study=study, series_number=number)
        for i in range(3):
            Instance.objects.create(
                series=series,
                sop_instance_uid=f"1.2.3.{number}.{i}",
                file=f"dicom/{number}-{i}.dcm",
            )
    study_recount(study)
    Report.objects.create(study=study, text="No abnormality.")
    bare = _study(department, day=2)

    rows = {s.pk: s for s in _rows(client.get(OVERVIEW))}

    assert (rows[study.pk].series_count, rows[study.pk].instance_count) == (2, 6)
    assert rows[study.pk].has_report is True
    assert (rows[bare.pk].series_count, rows[bare.pk].instance_count) == (0, 0)
    assert rows[bare.pk].has_report is False


def test_it_offers_a_checkbox_per_study_and_a_share_button(client, member, department):
    study = _study(department, day=1)

    response = client.get(OVERVIEW)

    share_url = reverse("sharing:share_start")
    assert f'action="{share_url}"' in response.text
    assert f'name="studies" value="{study.pk}"' in response.text
    assert "Share studies" in response.text


def _count_queries(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(OVERVIEW)
    assert response.status_code == 200
    return len(queries)


def _add_studies(department, count):
    for _ in range(count):
        study = StudyFactory(patient=PatientFactory(department=department))
        series = SeriesFactory(study=study)
        Instance.objects.create(
            series=series, sop_instance_uid=f"1.9.{study.pk}", file="dicom/x.dcm"
        )
        Report.objects.create(study=study, text="Normal.")


def test_it_runs_as_many_queries_for_100_studies_as_for_10(client, member, department):
    _add_studies(department, 10)
    with_ten = _count_queries(client)
    _add_studies(department, 90)
    with_hundred = _count_queries(client)

    assert with_ten == with_hundred


def test_a_member_of_three_departments_sees_them_all_and_no_other(client):
    # Three departments (the unfiltered page's statement pads the ids to
    # four) against the same rows through a filter (the queryset path).
    mine = [DepartmentFactory() for _ in range(3)]
    other = DepartmentFactory()
    user = UserFactory(departments=mine)
    client.force_login(user)
    for day in range(1, 28):
        _study(mine[day % 3], day=day)
    hidden = _study(other, day=28)
    everything = {"date_from": "2024-01-01", "date_to": "2024-12-31"}

    pages = {}
    for number in (1, 2, 3):
        plain = client.get(OVERVIEW, {"page": number})
        filtered = client.get(OVERVIEW, {**everything, "page": number})
        assert _rows(plain) == _rows(filtered)
        assert plain.context["page"].number == filtered.context["page"].number
        pages[number] = plain

    assert [s.study_date.day for s in _rows(pages[1])] == list(range(27, 2, -1))
    # A page past the end shows the last one, as Django's get_page does.
    assert [s.study_date.day for s in _rows(pages[2])] == [2, 1]
    assert _rows(pages[3]) == _rows(pages[2])
    assert "27 studies" in pages[1].text
    assert hidden not in _rows(pages[1]) + _rows(pages[2])
    assert other.name not in pages[1].text
    assert {d.name for d in mine} <= {s.department.name for s in _rows(pages[1])}


def test_a_user_of_no_department_sees_an_empty_overview(client):
    _study(DepartmentFactory(), day=1)
    client.force_login(UserFactory())

    response = client.get(OVERVIEW)

    assert response.status_code == 200
    assert _rows(response) == []
    assert "0 studies" in response.text
