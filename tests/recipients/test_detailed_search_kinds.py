"""The detailed search shows the criteria of the kind chosen, and a styled
Search button (issue 14, item 14)."""

import re

import pytest
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def fieldsets(html):
    return {
        kinds: "criteria-off" in classes
        for classes, kinds in re.findall(
            r'<fieldset class="(criteria[^"]*)" data-kinds="([^"]+)"', html
        )
    }


@pytest.mark.parametrize(
    ("kind", "hidden"),
    [
        (None, {"user": False, "group department": True}),
        ("user", {"user": False, "group department": True}),
        ("group", {"user": True, "group department": False}),
        ("department", {"user": True, "group department": False}),
    ],
)
def test_only_the_criteria_of_the_kind_chosen_are_shown(client, kind, hidden):
    client.force_login(UserFactory())
    params = {"kind": kind, "name": "x"} if kind else {}

    html = client.get(reverse("recipients:detailed_search"), params).content.decode()

    assert fieldsets(html) == hidden


def test_the_search_button_has_the_products_style(client):
    client.force_login(UserFactory())

    html = client.get(reverse("recipients:detailed_search")).content.decode()

    assert re.search(
        r'<button type="submit" class="button button-primary">\s*Search\s*</button>',
        html,
    )
