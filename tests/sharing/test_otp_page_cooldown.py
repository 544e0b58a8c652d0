"""The code page never claims an SMS that was not sent (issue 14, item 11)."""

import datetime

import pytest
from django.test import Client
from django.urls import reverse

from sharing.models import OTPDevice
from tests.factories import UserFactory, make_bucket
from tests.sharing.access_helpers import CODE_RE, wrong_code

pytestmark = pytest.mark.django_db

SENT = "A code was sent to your mobile"
NONE = "No valid code is waiting for you"


def code_url(bucket):
    return reverse("sharing:bucket_code", kwargs={"bucket_id": bucket.pk})


@pytest.fixture
def get(django_capture_on_commit_callbacks):
    def get(client, bucket):
        with django_capture_on_commit_callbacks(execute=True):
            page = client.get(code_url(bucket))
        assert page.status_code == 200
        return page.content.decode()

    return get


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    def post(client, bucket, data):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(code_url(bucket), data)

    return post


def _cooldown_over(bucket):
    device = OTPDevice.objects.get(bucket=bucket)
    device.last_generated_timestamp -= datetime.timedelta(minutes=2)
    device.save(update_fields=["last_generated_timestamp"])


def test_another_browser_right_after_the_code_was_used(client, get, post, sms_outbox):
    bucket = make_bucket(recipient=UserFactory(mobile="+32475123456"))
    client.force_login(bucket.recipient_user)
    get(client, bucket)
    code = CODE_RE.search(sms_outbox[-1].body).group(1)
    assert post(client, bucket, {"code": code}).status_code == 302

    other = Client()
    other.force_login(bucket.recipient_user)
    page = get(other, bucket)

    assert len(sms_outbox) == 1  # nothing was sent for the second browser
    assert SENT not in page
    assert NONE in page
    assert "You can ask for a new code at" in page
    assert 'data-wait-seconds="0"' not in page

    _cooldown_over(bucket)
    later = get(other, bucket)

    assert len(sms_outbox) == 2
    assert SENT in later


def test_right_after_an_unlock(client, get, post, sms_outbox):
    bucket = make_bucket(recipient=UserFactory(mobile="+32475123456"))
    admin = bucket.share.source_department.memberships.get(is_admin=True).user
    client.force_login(bucket.recipient_user)
    get(client, bucket)
    code = CODE_RE.search(sms_outbox[-1].body).group(1)
    for _ in range(5):
        post(client, bucket, {"code": wrong_code(code)})
    bucket.refresh_from_db()
    assert bucket.is_locked
    admin_client = Client()
    admin_client.force_login(admin)
    unlocked = admin_client.post(reverse("sharing:status_unlock", args=[bucket.pk]))
    assert unlocked.status_code == 302

    page = get(client, bucket)

    assert len(sms_outbox) == 1
    assert SENT not in page
    assert "You can ask for a new code at" in page
    # The old code opens nothing, as the page now says.
    refused = post(client, bucket, {"code": code})
    assert refused.status_code == 200

    _cooldown_over(bucket)
    resend = post(client, bucket, {"resend": "1"})
    assert resend.status_code == 302
    assert len(sms_outbox) == 2
    assert SENT in get(client, bucket)
