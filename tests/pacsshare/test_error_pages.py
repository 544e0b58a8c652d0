"""Refusals and missing pages look like the product, not like a stack trace."""

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_missing_page_says_so_in_the_sites_layout(client):
    client.force_login(UserFactory())

    response = client.get("/studies/999999/")

    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page and "Back to the overview" in page
    assert "No such study" not in page  # the exception text is not shown


def test_a_refused_action_says_whom_to_contact(client):
    client.force_login(UserFactory())

    response = client.get("/admin/")

    assert response.status_code == 403
    assert "contact your department" in response.content.decode()
