"""The SMS code page a recipient sees before a two-factor bucket opens."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing.models import AuditEvent, Bucket, OTPDevice
from tests.factories import UserFactory, make_bucket
from tests.sharing.access_helpers import (  # noqa: F401
    CODE_RE,
    wrong_code,
)

pytestmark = pytest.mark.django_db


def code_url(bucket):
    return reverse("sharing:bucket_code", kwargs={"bucket_id": bucket.pk})


def study_url(bucket):
    return reverse(
        "sharing:received_study",
        kwargs={"bucket_id": bucket.pk, "study_id": bucket.share.studies.get().pk},
    )


@pytest.fixture
def arrive(client, sms_outbox, django_capture_on_commit_callbacks):
    """Log the recipient in, open the code page (which sends the SMS); return code."""

    def arrive(bucket, user=None):
        client.force_login(user or bucket.recipient_user)
        with django_capture_on_commit_callbacks(execute=True):
            page = client.get(code_url(bucket))
        assert page.status_code == 200
        return page, CODE_RE.search(sms_outbox[-1].body).group(1)

    return arrive


def post_code(client, bucket, code, capture):
    with capture(execute=True):
        return client.post(code_url(bucket), {"code": code})


def test_opening_sends_a_code_and_says_where(arrive, sms_outbox):
    bucket = make_bucket(recipient=UserFactory(mobile="+32475123456"))

    page, _code = arrive(bucket)

    content = page.content.decode()
    assert "A code was sent to your mobile ending in" in content
    assert "··56" in content
    assert "Peeters" not in content and "left lower lobe" not in content
    assert [m.to for m in sms_outbox] == ["+32475123456"]
    # The page holds forms: "no-referrer" would make browsers send Origin: null.
    assert page["Referrer-Policy"] != "no-referrer"


def test_reloading_the_page_does_not_send_another_code(
    arrive, client, sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    arrive(bucket)

    with django_capture_on_commit_callbacks(execute=True):
        client.get(code_url(bucket))

    assert len(sms_outbox) == 1


def test_the_right_code_opens_the_study(
    arrive, client, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    _page, code = arrive(bucket)

    response = post_code(client, bucket, code, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    study = client.get(response["Location"], follow=True)
    assert "Peeters" in study.content.decode()
    assert client.get(study_url(bucket)).status_code == 200


def test_the_code_may_be_typed_with_spaces(
    arrive, client, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    _page, code = arrive(bucket)

    response = post_code(
        client, bucket, f"{code[:3]} {code[3:]}", django_capture_on_commit_callbacks
    )

    assert response.status_code == 302


def test_a_wrong_code_says_how_many_tries_are_left(
    arrive, client, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    _page, code = arrive(bucket)

    response = post_code(
        client, bucket, wrong_code(code), django_capture_on_commit_callbacks
    )

    assert response.status_code == 200
    assert (
        "After 4 more wrong codes this share will be locked."
        in response.content.decode()
    )
    assert client.get(study_url(bucket)).status_code == 302


def test_a_malformed_code_is_not_counted(
    arrive, client, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    arrive(bucket)

    response = post_code(client, bucket, "12a", django_capture_on_commit_callbacks)

    assert "Enter the 6 digits of the code." in response.content.decode()
    assert Bucket.objects.get(pk=bucket.pk).failed_otp_attempts == 0


def test_five_wrong_codes_show_the_locked_page(
    arrive, client, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    _page, code = arrive(bucket)

    for _ in range(5):
        response = post_code(
            client, bucket, wrong_code(code), django_capture_on_commit_callbacks
        )
    locked = client.get(response["Location"])

    assert locked.status_code == 403
    content = locked.content.decode()
    assert "This share is locked" in content
    assert "Radiologie AZ Sint-Jan" in content
    right = post_code(client, bucket, code, django_capture_on_commit_callbacks)
    assert right.status_code == 403


def test_resend_respects_the_cool_down(
    arrive, client, sms_outbox, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    page, _code = arrive(bucket)
    assert 'data-wait-seconds="' in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        early = client.post(code_url(bucket), {"resend": "1"}, follow=True)
    assert "Please wait" in early.content.decode()
    assert len(sms_outbox) == 1

    OTPDevice.objects.filter(bucket=bucket).update(
        last_generated_timestamp=timezone.now() - datetime.timedelta(seconds=61)
    )
    with django_capture_on_commit_callbacks(execute=True):
        later = client.post(code_url(bucket), {"resend": "1"}, follow=True)
    assert "A new code is on its way." in later.content.decode()
    assert len(sms_outbox) == 2


def test_the_verified_state_holds_for_that_bucket_only(
    arrive, client, django_capture_on_commit_callbacks
):
    user = UserFactory(mobile="+32475123456")
    first = make_bucket(recipient=user)
    second = make_bucket(recipient=user)
    _page, code = arrive(first)
    post_code(client, first, code, django_capture_on_commit_callbacks)

    assert client.get(study_url(first)).status_code == 200
    response = client.get(study_url(second))
    assert response.status_code == 302
    assert response["Location"] == code_url(second)


def test_the_verified_state_ends_with_the_session(
    arrive, client, django_capture_on_commit_callbacks
):
    bucket = make_bucket()
    _page, code = arrive(bucket)
    post_code(client, bucket, code, django_capture_on_commit_callbacks)

    client.logout()
    client.force_login(bucket.recipient_user)

    assert client.get(study_url(bucket)).status_code == 302


def test_a_user_without_mobile_is_told_what_to_do(client, sms_outbox):
    bucket = make_bucket(recipient=UserFactory(mobile=""))
    client.force_login(bucket.recipient_user)

    content = client.get(code_url(bucket)).content.decode()

    assert "Your account has no mobile number" in content
    assert sms_outbox == []


def test_a_bucket_without_two_factor_skips_the_code_page(client):
    bucket = make_bucket(require_otp=False)
    client.force_login(bucket.recipient_user)

    response = client.get(code_url(bucket))

    assert response["Location"] == reverse(
        "sharing:received", kwargs={"bucket_id": bucket.pk}
    )


def test_the_code_page_refuses_strangers(client):
    bucket = make_bucket()
    client.force_login(UserFactory())

    response = client.get(code_url(bucket))

    assert response.status_code == 404
    assert not OTPDevice.objects.exists()
    assert AuditEvent.objects.filter(action="access_refused").count() == 1
