"""A study id beyond the database's integer range is a form error, never a 500.

SQLite stops at 2**63 - 1 with an OverflowError and PostgreSQL with "bigint out
of range"; the studies step must refuse such an id before any query, on either.
"""

import html

import pytest
from django.urls import reverse

from tests.sharing.wizard_support import (
    nothing_created,
    post_step,
    start,
    step_url,
)

pytestmark = pytest.mark.django_db

BEYOND_ANY_INTEGER = "99999999999999999999"  # 20 digits, more than 2**64
REFUSED = "You may not share one of these studies."


def _studies_errors(response):
    return [str(e) for e in response.context["form"].errors.get("studies", [])]


@pytest.mark.parametrize(
    "ids",
    [
        pytest.param([BEYOND_ANY_INTEGER], id="alone"),
        pytest.param(None, id="beside-a-valid-study"),
        pytest.param(["9223372036854775808"], id="just-past-bigint"),
    ],
)
def test_the_studies_step_refuses_an_id_beyond_the_integer_range(
    sender_client, world, ids
):
    if ids is None:
        ids = [str(world.studies[0].pk), BEYOND_ANY_INTEGER]
    start(sender_client, world.studies)

    response = post_step(sender_client, "studies", {"studies": ids})

    assert response.status_code == 200
    assert _studies_errors(response) == [REFUSED]
    assert REFUSED in html.unescape(response.text)
    assert nothing_created()


def test_the_wizard_still_goes_on_after_the_refused_id(sender_client, world):
    start(sender_client, world.studies)
    post_step(sender_client, "studies", {"studies": [BEYOND_ANY_INTEGER]})

    response = post_step(
        sender_client, "studies", {"studies": [str(world.studies[0].pk)]}
    )

    assert response.status_code == 302
    assert response.url == step_url("recipients")


def test_the_start_link_ignores_an_id_beyond_the_integer_range(sender_client, world):
    response = sender_client.get(
        reverse("sharing:share_start"),
        {"studies": [BEYOND_ANY_INTEGER, str(world.studies[0].pk)]},
    )

    assert response.status_code == 302
    page = sender_client.get(response.url)
    assert page.status_code == 200
    assert world.studies[0].description in page.text
