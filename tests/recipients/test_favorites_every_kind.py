"""Favorites list every kind a sender can star (issue 14, item 13)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from recipients.models import Favorite, User
from tests.factories import (
    DepartmentFactory,
    UserFactory,
    UserGroupFactory,
    build_wizard_world,
)

pytestmark = pytest.mark.django_db


def test_the_favorites_page_lists_users_groups_and_departments(client):
    sender = UserFactory(username="sender")
    colleague = UserFactory(first_name="Anne", last_name="Peeters")
    public_group = UserGroupFactory(name="Praktijk De Linde", is_public=True)
    team = UserGroupFactory(name="Tumor board thorax", is_public=False)
    team.members.add(UserFactory())
    department = DepartmentFactory(name="Radiologie Gent", is_public=False)
    for target in ({"user": colleague}, {"group": public_group}, {"group": team}):
        Favorite.objects.create(owner=sender, **target)
    Favorite.objects.create(owner=sender, department=department)
    client.force_login(sender)

    page = client.get(reverse("recipients:favorites")).content.decode()
    fragment = client.get(reverse("recipients:favorites_fragment")).content.decode()

    for html in (page, fragment):
        assert f'data-key="user:{colleague.pk}"' in html
        assert f'data-key="group:{public_group.pk}"' in html
        assert f'data-key="group:{team.pk}"' in html
        assert f'data-key="department:{department.pk}"' in html


def test_a_private_favorite_group_is_pickable_in_the_wizard_by_its_owner_only(
    client,
):
    world = build_wizard_world()
    team = UserGroupFactory(name="Tumor board thorax", is_public=False)
    team.members.add(world.en)
    Favorite.objects.create(owner=world.sender, group=team)
    client.force_login(world.sender)
    start = client.get(reverse("sharing:share_start"))
    studies_url = start["Location"]
    step = client.post(
        studies_url,
        {
            "share_wizard-current_step": "studies",
            "studies-studies": [world.studies[0].pk],
        },
    )
    recipients_url = step["Location"]
    data = {
        "share_wizard-current_step": "recipients",
        "recipients-TOTAL_FORMS": "1",
        "recipients-INITIAL_FORMS": "0",
        "recipients-MIN_NUM_FORMS": "0",
        "recipients-MAX_NUM_FORMS": "1000",
        "recipients-0-key": f"group:{team.pk}",
        "recipients-0-send_mail": "on",
    }

    mine = client.post(recipients_url, data)
    assert mine.status_code == 302, mine.content.decode()[:2000]

    other = UserFactory(username="other-sender", departments=[world.department])
    client.force_login(other)
    start = client.get(reverse("sharing:share_start"))
    step = client.post(
        start["Location"],
        {
            "share_wizard-current_step": "studies",
            "studies-studies": [world.studies[0].pk],
        },
    )
    theirs = client.post(step["Location"], data)
    assert theirs.status_code == 200
    assert "This recipient is unknown." in theirs.content.decode()


def test_the_seeded_favorite_group_appears(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call_command(
        "seed_demo", allow_without_debug=True, stdout=StringIO(), stderr=StringIO()
    )
    client.force_login(User.objects.get(username="sophie.dubois"))

    html = client.get(reverse("recipients:favorites")).content.decode()

    assert "Tumor board thorax" in html
