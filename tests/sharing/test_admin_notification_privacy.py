"""The Notification admin shows where a message went without disclosing it."""

import pytest
from django.urls import reverse

from sharing.models import Notification
from tests.factories import build_admin_world

pytestmark = pytest.mark.django_db


def test_it_masks_the_mobile_and_a_private_email_in_the_changelist(client):
    world = build_admin_world()
    recipient = world.bucket_a.recipient_user
    recipient.email_public = False
    recipient.save()
    for channel, address in (("sms", "+32475123456"), ("email", "hidden@example.org")):
        Notification.objects.create(
            channel=channel,
            kind="share",
            bucket=world.bucket_a,
            user=recipient,
            to_address=address,
            language="en",
        )
    client.force_login(world.admin_a)

    page = client.get(reverse("admin:sharing_notification_changelist")).content

    assert b"+32475123456" not in page and b"56" in page
    assert b"hidden@example.org" not in page and b"@example.org" in page
