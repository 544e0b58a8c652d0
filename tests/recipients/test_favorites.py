"""Favorites: a sender's list of users, groups and departments."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from recipients.models import Favorite
from recipients.selectors import directory_entry_for_key, favorites_of
from recipients.services import favorite_add, favorite_remove, favorites_add_many
from tests.factories import DepartmentFactory, UserFactory, UserGroupFactory

pytestmark = pytest.mark.django_db


def keys(entries):
    return [entry.key for entry in entries]


def test_it_adds_users_groups_and_departments_once():
    owner = UserFactory()
    user = UserFactory(first_name="Anna", last_name="Aerts")
    group = UserGroupFactory(name="Bravo practice")
    department = DepartmentFactory(name="Charlie radiology")

    assert favorite_add(owner=owner, key=f"user:{user.pk}") is True
    assert favorite_add(owner=owner, key=f"group:{group.pk}") is True
    assert favorite_add(owner=owner, key=f"department:{department.pk}") is True
    assert favorite_add(owner=owner, key=f"user:{user.pk}") is False

    assert keys(favorites_of(user=owner)) == [
        f"user:{user.pk}",
        f"group:{group.pk}",
        f"department:{department.pk}",
    ]
    assert Favorite.objects.filter(owner=owner).count() == 3


@pytest.mark.parametrize("key", ["user:999999", "user:abc", "table:1", "", "user:0"])
def test_it_refuses_a_key_that_names_nothing(key):
    with pytest.raises(ValidationError):
        favorite_add(owner=UserFactory(), key=key)


def test_it_refuses_inactive_users_and_private_groups():
    owner = UserFactory()
    inactive = UserFactory(is_active=False)
    private = UserGroupFactory(is_public=False)

    for key in (f"user:{inactive.pk}", f"group:{private.pk}"):
        with pytest.raises(ValidationError):
            favorite_add(owner=owner, key=key)
    assert not Favorite.objects.filter(owner=owner).exists()


def test_it_removes_a_favorite():
    owner = UserFactory()
    user = UserFactory()
    favorite_add(owner=owner, key=f"user:{user.pk}")

    assert favorite_remove(owner=owner, key=f"user:{user.pk}") is True
    assert favorite_remove(owner=owner, key=f"user:{user.pk}") is False
    assert favorites_of(user=owner) == []


def test_adding_many_is_idempotent_and_skips_what_cannot_be_picked():
    owner = UserFactory()
    user = UserFactory()
    group = UserGroupFactory()
    inactive = UserFactory(is_active=False)
    favorite_add(owner=owner, key=f"user:{user.pk}")

    added = favorites_add_many(
        owner=owner,
        keys=[
            f"user:{user.pk}",
            f"group:{group.pk}",
            f"group:{group.pk}",
            f"user:{inactive.pk}",
            "user:424242",
            "forged",
        ],
    )

    assert added == 1
    assert favorites_add_many(owner=owner, keys=[f"group:{group.pk}"]) == 0
    assert set(keys(favorites_of(user=owner))) == {
        f"user:{user.pk}",
        f"group:{group.pk}",
    }


def test_favorites_of_hides_users_made_inactive_since():
    owner = UserFactory()
    user = UserFactory()
    favorite_add(owner=owner, key=f"user:{user.pk}")
    user.is_active = False
    user.save()

    assert favorites_of(user=owner) == []


def test_favorites_are_per_sender():
    owner, other = UserFactory(), UserFactory()
    favorite_add(owner=owner, key=f"user:{UserFactory().pk}")

    assert favorites_of(user=other) == []


def test_entry_for_key_resolves_only_pickable_recipients():
    user = UserFactory(first_name="Noël", last_name="Claes")
    group = UserGroupFactory(is_public=False)

    entry = directory_entry_for_key(key=f"user:{user.pk}")

    assert entry.name == "Noël Claes"
    assert entry.kind == "user"
    assert entry.pk == user.pk
    assert directory_entry_for_key(key=f"group:{group.pk}") is None
    assert directory_entry_for_key(key="user:1; DROP TABLE") is None
    assert directory_entry_for_key(key="user:99999999") is None


def test_the_page_lists_favorites_with_remove_buttons(client):
    owner = UserFactory()
    user = UserFactory(first_name="Zoë", last_name="Lambert")
    favorite_add(owner=owner, key=f"user:{user.pk}")
    client.force_login(owner)

    response = client.get(reverse("recipients:favorites"))

    html = response.content.decode()
    assert "Zoë Lambert" in html
    assert reverse("recipients:favorite_remove") in html
    assert reverse("recipients:quick_search") in html


def test_the_fragment_lists_favorites_for_the_wizard(client):
    owner = UserFactory()
    user = UserFactory(first_name="Zoë", last_name="Lambert", language="fr")
    favorite_add(owner=owner, key=f"user:{user.pk}")
    client.force_login(owner)

    response = client.get(reverse("recipients:favorites_fragment"))

    html = response.content.decode()
    assert "<html" not in html
    assert f'data-key="user:{user.pk}"' in html
    assert 'data-language="fr"' in html
    assert 'data-has-mobile="true"' in html
    assert 'data-favorite="true"' in html


def test_posting_adds_and_removes_a_favorite(client):
    owner = UserFactory()
    user = UserFactory()
    client.force_login(owner)

    added = client.post(reverse("recipients:favorite_add"), {"key": f"user:{user.pk}"})
    assert added.status_code == 302
    assert keys(favorites_of(user=owner)) == [f"user:{user.pk}"]

    removed = client.post(
        reverse("recipients:favorite_remove"), {"key": f"user:{user.pk}"}
    )
    assert removed.status_code == 302
    assert favorites_of(user=owner) == []


def test_an_htmx_post_returns_the_updated_list(client):
    owner = UserFactory()
    user = UserFactory(first_name="Piet", last_name="Maes")
    client.force_login(owner)

    response = client.post(
        reverse("recipients:favorite_add"),
        {"key": f"user:{user.pk}"},
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert 'id="favorites-list"' in html
    assert "Piet Maes" in html


def test_a_forged_key_is_refused(client):
    client.force_login(UserFactory())

    response = client.post(
        reverse("recipients:favorite_add"),
        {"key": "user:999999"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 400


def test_posting_needs_a_csrf_token_and_a_login():
    owner = UserFactory()
    user = UserFactory()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)

    refused = strict.post(
        reverse("recipients:favorite_add"), {"key": f"user:{user.pk}"}
    )
    anonymous = Client().post(
        reverse("recipients:favorite_add"), {"key": f"user:{user.pk}"}
    )

    assert refused.status_code == 403
    assert anonymous.status_code == 302
    assert not Favorite.objects.exists()


def test_a_get_does_not_add(client):
    client.force_login(UserFactory())

    response = client.get(reverse("recipients:favorite_add"), {"key": "user:1"})

    assert response.status_code == 405
