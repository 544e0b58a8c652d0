"""Status Forwarding shows a plain department member the shares they sent; the
department's admins and the service desk see the department's."""

import pytest
from django.urls import reverse

from tests.factories import build_admin_world as build_world
from tests.factories import locked_bucket

pytestmark = pytest.mark.django_db

PAGE = reverse("sharing:status_forwarding")


@pytest.fixture
def world():
    world = build_world()
    world.bucket_plain = locked_bucket(department=world.dept_a, sender=world.plain)
    return world


def _patients(response):
    return {
        patient.family_name
        for row in response.context["rows"]
        for study in row["bucket"].share.studies.all()
        for patient in [study.patient]
    }


def _name(bucket):
    return bucket.share.studies.get().patient.family_name


def test_it_shows_a_plain_member_only_the_shares_they_sent(client, world):
    client.force_login(world.plain)

    response = client.get(PAGE)

    assert [row["bucket"].pk for row in response.context["rows"]] == [
        world.bucket_plain.pk
    ]
    # A colleague's patient is not named anywhere on the page.
    assert _name(world.bucket_a) not in response.content.decode()
    assert _name(world.bucket_plain) in response.content.decode()


def test_it_refuses_a_plain_member_a_colleagues_bucket(client, world):
    client.force_login(world.plain)

    revoke = client.post(reverse("sharing:status_revoke", args=[world.bucket_a.pk]))

    assert revoke.status_code == 404


def test_it_shows_the_departments_admin_every_share_of_the_department(client, world):
    client.force_login(world.admin_a)

    response = client.get(PAGE)

    assert _patients(response) == {_name(world.bucket_a), _name(world.bucket_plain)}


def test_it_shows_the_service_desk_every_department(client, world):
    client.force_login(world.desk)

    response = client.get(PAGE)

    assert _patients(response) == {
        _name(world.bucket_a),
        _name(world.bucket_b),
        _name(world.bucket_plain),
    }
