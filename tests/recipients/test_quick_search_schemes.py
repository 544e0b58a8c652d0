"""Quick search finds every scheme and name the manual lists (issue 14, item 9)."""

import pytest
from django.urls import reverse

from tests.factories import PhysicianNumberFactory, UserFactory

pytestmark = pytest.mark.django_db


def found(client, query):
    response = client.get(reverse("recipients:quick_search"), {"q": query})
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def sender_client(client):
    client.force_login(UserFactory())
    return client


@pytest.mark.parametrize(
    "query",
    ["UCGN 2019-0457", "ucgn 20190457", "UCGN-2019-0457", "2019-0457", "20190457"],
)
def test_ucgn_numbers_are_found_with_or_without_prefix(sender_client, query):
    user = UserFactory(first_name="Claire", last_name="Wagner")
    PhysicianNumberFactory(user=user, scheme="UCGN", number="UCGN 2019-0457")

    html = found(sender_client, query)

    assert f'data-key="user:{user.pk}"' in html
    assert "UCGN UCGN" not in html
    assert "UCGN 2019-0457" in html


@pytest.mark.parametrize("query", ["PNB-448812", "pnb 448812", "PNB448812", "448812"])
def test_pnb_numbers_are_found_with_or_without_prefix(sender_client, query):
    user = UserFactory(first_name="Luc", last_name="Hoffmann")
    PhysicianNumberFactory(user=user, scheme="PNB", number="PNB-448812")

    html = found(sender_client, query)

    assert f'data-key="user:{user.pk}"' in html
    assert "PNB PNB" not in html


@pytest.mark.parametrize(
    ("query", "last_name"),
    [
        ("desmet", "De Smet"),
        ("De Smet", "De Smet"),
        ("desm", "De Smet"),
        ("vandijk", "van Dijk"),
        ("van dijk", "van Dijk"),
        ("sofie vandijk", "van Dijk"),
        ("vanderberg", "Van der Berg"),
    ],
)
def test_names_with_particles_are_found_written_together(
    sender_client, query, last_name
):
    user = UserFactory(first_name="Sofie", last_name=last_name)
    UserFactory(first_name="Sofie", last_name="Smets")

    html = found(sender_client, query)

    assert f'data-key="user:{user.pk}"' in html


def test_the_detailed_search_finds_a_prefixed_number(client):
    client.force_login(UserFactory())
    user = UserFactory(first_name="Claire", last_name="Wagner")
    PhysicianNumberFactory(user=user, scheme="UCGN", number="UCGN 2019-0457")

    response = client.get(
        reverse("recipients:detailed_search"),
        {"kind": "user", "scheme": "UCGN", "number": "UCGN 2019-0457"},
    )

    assert f'data-key="user:{user.pk}"' in response.content.decode()
