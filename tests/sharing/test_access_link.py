"""The e-mail link /b/<token>/: log in, swap the token for the session, redirect."""

import pytest
from django.urls import reverse

from sharing.models import AuditEvent
from tests.factories import PASSWORD, UserFactory, make_bucket

pytestmark = pytest.mark.django_db


def link_of(bucket):
    return reverse("sharing:bucket_link", args=[bucket.link_token])


def test_the_token_carries_at_least_128_bits_and_is_stored_hashed():
    bucket = make_bucket(require_otp=False)

    token = bucket.link_token

    assert len(token) >= 22  # 22 base64 characters = 132 bits
    assert token not in {bucket.token_hash, bucket.link_secret}


def test_an_anonymous_visitor_logs_in_first_and_comes_back(client):
    bucket = make_bucket(require_otp=False)
    token = bucket.link_token

    response = client.get(link_of(bucket))

    assert response.status_code == 302
    assert token not in response["Location"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Location"].startswith(reverse("login"))
    login_page = client.get(response["Location"])
    assert token not in login_page.content.decode()

    received = reverse("sharing:received", kwargs={"bucket_id": bucket.pk})
    logged_in = client.post(
        response["Location"],
        {
            "username": bucket.recipient_user.username,
            "password": PASSWORD,
            "next": received,
        },
        follow=True,
    )

    assert logged_in.status_code == 200
    assert "Peeters" in logged_in.content.decode()
    assert all(token not in url for url, _status in logged_in.redirect_chain)


def test_a_logged_in_recipient_goes_straight_to_the_bucket(client):
    bucket = make_bucket(require_otp=False)
    client.force_login(bucket.recipient_user)

    response = client.get(link_of(bucket))

    assert response.status_code == 302
    assert response["Location"] == reverse(
        "sharing:received", kwargs={"bucket_id": bucket.pk}
    )
    assert response["Referrer-Policy"] == "no-referrer"


def test_an_unknown_token_gets_a_clear_404_page_and_is_audited(client):
    token = "A" * 43
    client.force_login(UserFactory())

    response = client.get(reverse("sharing:bucket_link", args=[token]))

    assert response.status_code == 302
    assert token not in response["Location"]
    assert response["Referrer-Policy"] == "no-referrer"
    page = client.get(response["Location"])
    assert page.status_code == 404
    assert "This link is not valid" in page.content.decode()
    assert token not in page.content.decode()
    event = AuditEvent.objects.get(action="access_refused")
    assert event.details["refusal"] == "invalid_link"
    assert token not in str(event.details)


def test_a_truncated_link_is_refused(client):
    bucket = make_bucket(require_otp=False)

    response = client.get(
        reverse("sharing:bucket_link", args=[bucket.link_token[:20]]), follow=True
    )

    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()


def test_the_link_used_by_another_user_shows_no_data(client):
    bucket = make_bucket(require_otp=False)
    intruder = UserFactory()
    client.force_login(intruder)

    response = client.get(link_of(bucket), follow=True)

    content = response.content.decode()
    assert response.status_code == 404
    assert "This share is not for you" in content
    assert "Peeters" not in content and "CT thorax" not in content
    assert "left lower lobe" not in content
    event = AuditEvent.objects.get(action="access_refused")
    assert event.actor == intruder
    assert event.details["refusal"] == "not_recipient"
