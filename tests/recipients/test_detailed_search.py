"""Detailed search: a kind of recipient, criteria, paginated results, select."""

import pytest
from django.urls import reverse

from recipients.selectors import directory_detailed_search
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    PhysicianNumberFactory,
    UserFactory,
    UserGroupFactory,
)

pytestmark = pytest.mark.django_db


def found(**criteria):
    return [entry.key for entry in directory_detailed_search(**criteria).entries]


def test_it_finds_users_by_first_and_last_name_ignoring_case_and_accents():
    noel = UserFactory(first_name="Noël", last_name="Müller")
    UserFactory(first_name="Noah", last_name="Peeters")
    UserFactory(first_name="Marie", last_name="Noël")

    assert found(kind="user", first_name="noel") == [f"user:{noel.pk}"]
    assert found(kind="user", last_name="MULLER") == [f"user:{noel.pk}"]
    assert found(kind="user", first_name="no", last_name="mul") == [f"user:{noel.pk}"]


def test_it_finds_users_by_scheme_and_number():
    riziv = UserFactory()
    big = UserFactory()
    PhysicianNumberFactory(user=riziv, scheme="RIZIV", number="1-23456-78-901")
    PhysicianNumberFactory(user=big, scheme="BIG", number="12345678901")

    assert set(found(kind="user", number="1.23456.78.901")) == {
        f"user:{riziv.pk}",
        f"user:{big.pk}",
    }
    assert found(kind="user", scheme="BIG", number="123-456") == [f"user:{big.pk}"]
    assert found(kind="user", scheme="RIZIV") == [f"user:{riziv.pk}"]


def test_it_finds_users_by_city_or_postcode():
    liege = UserFactory(city="Liège", postcode="4000")
    UserFactory(city="Gent", postcode="9000")

    assert found(kind="user", place="liege") == [f"user:{liege.pk}"]
    assert found(kind="user", place="LIÈGE") == [f"user:{liege.pk}"]
    assert found(kind="user", place="40") == [f"user:{liege.pk}"]


def test_it_finds_users_by_department():
    department = DepartmentFactory(name="Radiology UZ Leuven", code="uzl")
    member = UserFactory()
    MembershipFactory(user=member, department=department)
    UserFactory()

    assert found(kind="user", department="leuven") == [f"user:{member.pk}"]
    assert found(kind="user", department="uzl") == [f"user:{member.pk}"]


def test_it_never_finds_inactive_users():
    UserFactory(first_name="Gone", is_active=False)

    assert found(kind="user", first_name="gone") == []


def test_it_finds_public_groups_and_departments_by_name_and_place():
    group = UserGroupFactory(name="Praktijk De Linde", city="Brugge")
    UserGroupFactory(name="Linde private", is_public=False)
    department = DepartmentFactory(
        name="Radiologie Namur", code="nam", city="Namur", postcode="5000"
    )
    DepartmentFactory(name="Radiologie hidden", code="hid", is_public=False)

    assert found(kind="group", name="linde") == [f"group:{group.pk}"]
    assert found(kind="group", place="brugge") == [f"group:{group.pk}"]
    assert found(kind="department", name="radiologie") == [
        f"department:{department.pk}"
    ]
    assert found(kind="department", place="5000") == [f"department:{department.pk}"]


def test_no_criterion_finds_nothing():
    UserFactory()

    assert found(kind="user") == []


def test_results_are_paginated_by_twenty():
    for index in range(25):
        UserFactory(first_name="Emma", last_name=f"Maes {index:02d}")

    first = directory_detailed_search(kind="user", first_name="emma", page=1)
    second = directory_detailed_search(kind="user", first_name="emma", page=2)

    assert len(first.entries) == 20
    assert len(second.entries) == 5
    assert first.page.paginator.count == 25
    assert not {e.key for e in first.entries} & {e.key for e in second.entries}


def test_the_page_shows_the_form_and_results_with_a_select_action(client):
    client.force_login(UserFactory())
    user = UserFactory(first_name="Hélène", last_name="Dupont")

    response = client.get(
        reverse("recipients:detailed_search"), {"kind": "user", "last_name": "dupont"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html
    assert 'name="first_name"' in html
    assert f'data-key="user:{user.pk}"' in html
    assert reverse("recipients:favorite_add") in html


def test_an_htmx_request_gets_only_the_results_fragment_with_pick_buttons(client):
    client.force_login(UserFactory())
    for index in range(21):
        UserFactory(first_name="Lotte", last_name=f"Claes {index:02d}")

    response = client.get(
        reverse("recipients:detailed_search"),
        {"kind": "user", "first_name": "lotte"},
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert "<html" not in html
    assert html.count('class="directory-pick"') == 20
    assert 'type="button"' in html
    assert "page=2" in html
    assert 'data-has-mobile="true"' in html


def test_the_page_asks_for_a_criterion(client):
    client.force_login(UserFactory())

    response = client.get(reverse("recipients:detailed_search"), {"kind": "group"})

    assert "Fill in at least one criterion." in response.content.decode()


def test_the_page_requires_login(client):
    response = client.get(reverse("recipients:detailed_search"))

    assert response.status_code == 302
