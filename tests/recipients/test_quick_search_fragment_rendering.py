"""The quick-search fragment's pick buttons, built without a template include
per entry, carry exactly what the template gave, escaped, and no private data."""

import re

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from recipients.models import Favorite
from recipients.selectors import directory_quick_search
from tests.factories import DepartmentFactory, UserFactory, UserGroupFactory

pytestmark = pytest.mark.django_db


def quick_search(client, query):
    response = client.get(reverse("recipients:quick_search"), {"q": query})
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def sender(client):
    sender = UserFactory(username="frag-sender")
    client.force_login(sender)
    return sender


def test_the_pick_buttons_match_the_entry_template(client, sender):
    department = DepartmentFactory(code="frag-dep", name="Radiologie <Nord>")
    starred = UserFactory(
        first_name="Anne", last_name="Peeters", departments=[department]
    )
    UserFactory(first_name="Bart", last_name="Peeters", mobile="", email="")
    Favorite.objects.create(owner=sender, user=starred)
    page = quick_search(client, "peeters")
    entries = directory_quick_search(query="peeters")
    assert len(entries) == 2
    # The entries as the shared template renders them (its pick mode).
    expected = "".join(
        render_to_string(
            "recipients/_entry.html",
            {"entry": e, "mode": "pick", "favorite_keys": {f"user:{starred.pk}"}},
        )
        for e in entries
    )

    def squeeze(html):
        return " ".join(html.split()).replace("> <", "><")

    assert squeeze(expected) in squeeze(page)
    assert 'data-favorite="true"' in page and 'data-favorite="false"' in page
    assert 'data-has-mobile="false" data-has-email="false"' in page


def test_names_and_details_are_escaped_and_private_contacts_never_shown(client, sender):
    UserFactory(
        first_name='<img src=x onerror="alert(1)">',
        last_name="Peeters",
        speciality="Cardio & <b>vasc</b>",
        mobile="+32470123456",
        mobile_public=False,
        email="hidden.peeters@example.org",
        email_public=False,
    )
    page = quick_search(client, "peeters")
    assert "<img" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "Cardio &amp; &lt;b&gt;vasc&lt;/b&gt;" in page
    assert "470123456" not in page and "hidden.peeters" not in page
    assert 'data-has-mobile="true"' in page


def test_another_sender_does_not_see_the_first_ones_stars(client, sender):
    peeters = UserFactory(first_name="Anne", last_name="Peeters")
    Favorite.objects.create(owner=sender, user=peeters)
    assert 'data-favorite="true"' in quick_search(client, "peeters")
    client.force_login(UserFactory(username="frag-other"))
    page = quick_search(client, "peeters")
    assert 'data-favorite="true"' not in page and 'data-favorite="false"' in page


def test_the_favorites_page_mode_still_uses_the_form(client, sender):
    UserFactory(first_name="Anne", last_name="Peeters")
    response = client.get(
        reverse("recipients:quick_search"), {"q": "peeters", "mode": "favorite"}
    )
    page = response.content.decode()
    assert 'hx-post="' + reverse("recipients:favorite_add") in page
    assert "Add to favorites" in page


def test_starred_users_groups_and_departments_are_marked_in_the_fragment(
    client, sender
):
    # On PostgreSQL the favorites come with the users' entries (one statement).
    anne = UserFactory(first_name="Anne", last_name="Peeters")
    UserFactory(first_name="Bart", last_name="Peeters")
    team = UserGroupFactory(name="Peeters team", is_public=True)
    ward = DepartmentFactory(code="peeters-ward", name="Peeters ward")
    for favorite in ({"user": anne}, {"group": team}, {"department": ward}):
        Favorite.objects.create(owner=sender, **favorite)
    page = quick_search(client, "peeters")
    starred = {
        key
        for key, flag in re.findall(
            r'data-key="([^"]+)"[^>]*data-favorite="(\w+)"', page
        )
        if flag == "true"
    }
    assert starred == {f"user:{anne.pk}", f"group:{team.pk}", f"department:{ward.pk}"}
    assert page.count('data-favorite="false"') == 1  # Bart
