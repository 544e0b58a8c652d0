"""Share e-mails, OTP SMS and lock alerts, with tasks run in-process after commit.

These run without Redis (``make test`` with no services); the same behaviour through
a real worker and broker is in test_notifications_worker.py.
"""

import datetime
import re
from urllib.parse import urlparse

import pytest
from django.core import mail
from django.db import transaction
from django.urls import resolve

from pacsshare import sms
from sharing.models import AuditEvent, Notification, OTPDevice, Pseudonym, hash_secret
from sharing.outbox import delivery, queue
from sharing.outbox.tasks import send_notification
from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    MembershipFactory,
    OTPDeviceFactory,
    UserFactory,
    UserGroupFactory,
    make_share,
)

pytestmark = pytest.mark.django_db


def queue_and_send(bucket, capture):
    with capture(execute=True), transaction.atomic():
        created = queue.notifications_queue_for_bucket(bucket=bucket)
    return created


def test_it_mails_the_recipient_user_after_commit(django_capture_on_commit_callbacks):
    share = make_share()
    recipient = UserFactory(email="dr.who@example.org")
    bucket = BucketFactory(share=share, recipient_user=recipient)

    created = queue_and_send(bucket, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["dr.who@example.org"]
    assert message.cc == [] and message.bcc == []
    assert message.subject == "Dr. Anna Claes shared an exam with you"
    assert "Radiologie AZ Sint-Jan" in message.body
    assert "J.P." in message.body and "CT thorax" in message.body
    assert "5 March 2024" in message.body
    link = f"http://127.0.0.1:8000/b/{bucket.link_token}/"
    assert link in message.body
    assert resolve(urlparse(link).path).view_name == "sharing:bucket_link"
    assert "Please look at the left lower lobe." in message.body
    html = message.alternatives[0].content
    assert f'href="http://127.0.0.1:8000/b/{bucket.link_token}/"' in html
    for content in (message.body, html):
        assert "XYZZY" not in content
        assert "Peeters" not in content and "Jan " not in content
    created[0].refresh_from_db()
    assert created[0].status == Notification.Status.SENT
    assert created[0].attempts == 1
    assert f"notification-{created[0].pk}@" in created[0].provider_id
    assert created[0].sent_at is not None


def test_it_never_stores_the_link_token(django_capture_on_commit_callbacks):
    bucket = BucketFactory(share=make_share())

    (notification,) = queue_and_send(bucket, django_capture_on_commit_callbacks)

    notification.refresh_from_db()
    values = [str(getattr(notification, f.attname)) for f in Notification._meta.fields]
    assert not any(bucket.link_token in value for value in values)


def test_it_mails_each_group_member_with_an_email_once(
    django_capture_on_commit_callbacks,
):
    group = UserGroupFactory(name="Praktijk De Linde")
    members = [
        UserFactory(email="a@example.org"),
        UserFactory(email="b@example.org"),
        UserFactory(email=""),
        UserFactory(email="gone@example.org", is_active=False),
        UserFactory(email="A@example.org"),  # same address as the first
    ]
    group.members.set(members)
    bucket = BucketFactory(
        share=make_share(), recipient_user=None, recipient_group=group
    )

    queue_and_send(bucket, django_capture_on_commit_callbacks)

    assert sorted(m.to[0].lower() for m in mail.outbox) == [
        "a@example.org",
        "b@example.org",
    ]
    assert all(len(m.to) == 1 for m in mail.outbox)
    assert "as a member of Praktijk De Linde" in mail.outbox[0].body


def test_it_mails_every_member_of_a_department_bucket(
    django_capture_on_commit_callbacks,
):
    department = DepartmentFactory(name="Radiologie UZ Gent")
    for address in ("r1@example.org", "r2@example.org"):
        MembershipFactory(department=department, user=UserFactory(email=address))
    bucket = BucketFactory(
        share=make_share(), recipient_user=None, recipient_department=department
    )

    queue_and_send(bucket, django_capture_on_commit_callbacks)

    assert sorted(m.to[0] for m in mail.outbox) == ["r1@example.org", "r2@example.org"]


def test_it_sends_nothing_when_send_mail_is_off(django_capture_on_commit_callbacks):
    bucket = BucketFactory(share=make_share(), send_mail=False)

    created = queue_and_send(bucket, django_capture_on_commit_callbacks)

    assert created == [] and mail.outbox == []


def test_it_sends_nothing_when_the_transaction_rolls_back(
    django_capture_on_commit_callbacks,
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        bucket = BucketFactory(share=make_share())
        queue.notifications_queue_for_bucket(bucket=bucket)
        raise RuntimeError("the wizard failed")

    assert callbacks == []
    assert mail.outbox == []
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("language", "subject", "words"),
    [
        ("nl", "Dringend: Dr. Anna Claes heeft een onderzoek met u gedeeld", "maart"),
        ("fr", "Urgent : Dr. Anna Claes a partagé un examen avec vous", "mars"),
        (
            "de",
            "Dringend: Dr. Anna Claes hat eine Untersuchung mit Ihnen geteilt",
            "März",
        ),
    ],
)
def test_it_writes_the_mail_in_the_share_language(
    django_capture_on_commit_callbacks, language, subject, words
):
    share = make_share(language=language, urgent=True)
    bucket = BucketFactory(share=share, recipient_user=UserFactory(language="en"))

    queue_and_send(bucket, django_capture_on_commit_callbacks)

    (message,) = mail.outbox
    assert message.subject == subject
    assert words in message.body
    html = message.alternatives[0].content
    assert f'lang="{language}"' in html
    english = ["shared an exam", "Message from the sender", "Open the exam", "Hello"]
    for content in (message.body, html):
        assert not any(phrase in content for phrase in english), content


def test_it_shows_the_pseudonym_initials_when_anonymized(
    django_capture_on_commit_callbacks,
):
    share = make_share(anonymize=True)
    bucket = BucketFactory(share=share)
    Pseudonym.objects.create(
        bucket=bucket,
        patient=share.studies.get().patient,
        given_name="4711",
        family_name="Anonymous",
        pseudo_patient_id="ANON-1",
    )

    queue_and_send(bucket, django_capture_on_commit_callbacks)

    (message,) = mail.outbox
    assert "Patient 4.A.: CT thorax" in message.body
    assert "J.P." not in message.body
    assert "J.P." not in message.alternatives[0].content


def test_a_task_delivered_twice_sends_once(django_capture_on_commit_callbacks):
    bucket = BucketFactory(share=make_share())
    (notification,) = queue_and_send(bucket, django_capture_on_commit_callbacks)

    send_notification.delay(notification.pk)
    send_notification.apply(args=[notification.pk])

    assert len(mail.outbox) == 1
    notification.refresh_from_db()
    assert notification.attempts == 1


def test_it_retries_a_transient_smtp_failure_then_delivers(
    smtp_server, settings, django_capture_on_commit_callbacks
):
    smtp_server.fail_next("421 Service not available, try again later")
    bucket = BucketFactory(share=make_share())

    (notification,) = queue_and_send(bucket, django_capture_on_commit_callbacks)

    assert len(smtp_server.messages) == 1
    assert smtp_server.handler.refused == 1
    notification.refresh_from_db()
    assert notification.status == Notification.Status.SENT
    assert notification.attempts == 2


def test_it_marks_a_permanent_smtp_failure_failed_at_once(
    smtp_server, django_capture_on_commit_callbacks
):
    smtp_server.fail_next("550 Mailbox unavailable")
    bucket = BucketFactory(share=make_share())

    (notification,) = queue_and_send(bucket, django_capture_on_commit_callbacks)

    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    assert notification.attempts == 1
    assert "550" in notification.error
    assert smtp_server.messages == []


def test_it_gives_up_after_the_last_retry(
    smtp_server, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_MAX_RETRIES = 2
    smtp_server.fail_next(*["421 Busy"] * 5)
    bucket = BucketFactory(share=make_share())

    (notification,) = queue_and_send(bucket, django_capture_on_commit_callbacks)

    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    assert notification.attempts == 3
    assert (
        "Gave up after 3 attempts" in notification.error and "421" in notification.error
    )
    assert smtp_server.messages == []


def test_it_retries_when_the_smtp_server_is_unreachable(
    settings, django_capture_on_commit_callbacks
):
    from tests.fixtures_services import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.NOTIFICATION_MAX_RETRIES = 1
    bucket = BucketFactory(share=make_share())

    (notification,) = queue_and_send(bucket, django_capture_on_commit_callbacks)

    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    assert notification.attempts == 2
    assert "ConnectionRefusedError" in notification.error


def test_retry_delays_grow_with_jitter_and_stay_capped(settings):
    settings.NOTIFICATION_RETRY_BASE = 30.0
    delays = [delivery.retry_delay(n) for n in range(8)]

    assert 15 <= delays[0] <= 30
    assert 60 <= delays[2] <= 120
    assert all(d <= settings.NOTIFICATION_RETRY_MAX for d in delays)
    assert len({delivery.retry_delay(3) for _ in range(20)}) > 1


def test_otp_sms_carries_a_fresh_code_stored_only_hashed(
    sms_outbox, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level("DEBUG")
    recipient = UserFactory(mobile="+32475112233", language="nl")
    device = OTPDeviceFactory(
        bucket=BucketFactory(share=make_share(), recipient_user=recipient)
    )

    with django_capture_on_commit_callbacks(execute=True):
        notification = queue.notification_queue_otp(device=device)

    (message,) = sms_outbox
    assert message.to == "+32475112233"
    code = re.search(r"\b(\d{6})\b", message.body).group(1)
    assert message.body == (
        f"Uw PACSshare-code is {code}. Hij is 5 minuten geldig. Deel hem met niemand."
    )
    device.refresh_from_db()
    assert device.token_hash == hash_secret(code)
    remaining = device.valid_until - notification.created_at
    assert datetime.timedelta(minutes=4) < remaining <= datetime.timedelta(minutes=6)
    notification.refresh_from_db()
    assert notification.status == Notification.Status.SENT
    assert code not in caplog.text
    assert AuditEvent.objects.filter(action="otp_sent", bucket=device.bucket).exists()


def test_each_otp_sms_has_a_new_code(sms_outbox, django_capture_on_commit_callbacks):
    device = OTPDeviceFactory(bucket=BucketFactory(share=make_share()))

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            queue.notification_queue_otp(device=device)

    codes = {re.search(r"\d{6}", m.body).group(0) for m in sms_outbox}
    assert len(sms_outbox) == 3 and len(codes) == 3
    device.refresh_from_db()
    assert device.token_hash == hash_secret(re.search(r"\d{6}", sms_outbox[-1].body)[0])


def test_otp_sms_says_nothing_about_patient_or_exam(
    sms_outbox, django_capture_on_commit_callbacks
):
    device = OTPDeviceFactory(bucket=BucketFactory(share=make_share()))

    with django_capture_on_commit_callbacks(execute=True):
        queue.notification_queue_otp(device=device)

    body = sms_outbox[0].body
    for word in ("J.P.", "Peeters", "CT thorax", "Claes", "Sint-Jan", "lobe"):
        assert word not in body


def test_otp_needs_a_mobile_number():
    device = OTPDeviceFactory(bucket=BucketFactory(share=make_share()))
    device.user.mobile = ""
    device.user.save()

    with pytest.raises(ValueError, match="mobile"):
        queue.notification_queue_otp(device=device)


def test_otp_through_twilio_posts_the_message_and_never_stores_or_logs_the_code(
    twilio_http, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level("DEBUG")
    recipient = UserFactory(mobile="+32475998877", language="fr")
    device = OTPDeviceFactory(
        bucket=BucketFactory(share=make_share(), recipient_user=recipient)
    )

    with django_capture_on_commit_callbacks(execute=True):
        notification = queue.notification_queue_otp(device=device)

    (request,) = twilio_http.requests
    assert request["method"] == "POST"
    assert request["uri"] == (
        f"https://api.twilio.com/2010-04-01/Accounts/{twilio_http_sid()}/Messages.json"
    )
    assert request["data"]["To"] == "+32475998877"
    assert request["data"]["From"] == "+3225550100"
    code = re.search(r"\b(\d{6})\b", request["data"]["Body"]).group(1)
    assert request["data"]["Body"].startswith(f"Votre code PACSshare est {code}.")
    notification.refresh_from_db()
    assert notification.status == Notification.Status.SENT
    assert notification.provider_id.startswith("SM")
    assert code not in caplog.text
    assert_code_not_in_database(code)


def test_otp_is_retried_on_a_twilio_server_error(
    twilio_http, django_capture_on_commit_callbacks
):
    twilio_http.statuses.extend([503, 429])
    device = OTPDeviceFactory(bucket=BucketFactory(share=make_share()))

    with django_capture_on_commit_callbacks(execute=True):
        notification = queue.notification_queue_otp(device=device)

    assert len(twilio_http.requests) == 3
    notification.refresh_from_db()
    assert notification.status == Notification.Status.SENT
    assert notification.attempts == 3
    # Only the code of the SMS that went out is valid.
    last_code = re.search(r"\d{6}", twilio_http.requests[-1]["data"]["Body"])[0]
    assert OTPDevice.objects.get(pk=device.pk).token_hash == hash_secret(last_code)


def test_otp_fails_at_once_on_a_twilio_client_error(
    twilio_http, django_capture_on_commit_callbacks
):
    twilio_http.statuses.append(400)
    device = OTPDeviceFactory(bucket=BucketFactory(share=make_share()))

    with django_capture_on_commit_callbacks(execute=True):
        notification = queue.notification_queue_otp(device=device)

    assert len(twilio_http.requests) == 1
    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    assert "Twilio HTTP 400" in notification.error


def test_a_locked_bucket_alerts_the_sending_department_admins(
    django_capture_on_commit_callbacks,
):
    share = make_share()
    admin = UserFactory(email="admin@example.org", language="de")
    MembershipFactory(department=share.source_department, user=admin, is_admin=True)
    MembershipFactory(
        department=share.source_department, user=UserFactory(email="plain@example.org")
    )
    bucket = BucketFactory(share=share, recipient_user=UserFactory(last_name="Wouters"))

    with django_capture_on_commit_callbacks(execute=True):
        queue.notification_queue_bucket_locked(bucket=bucket)

    (message,) = mail.outbox
    assert message.to == ["admin@example.org"]
    assert "gesperrt" in message.subject
    assert "Wouters" in message.body and "5" in message.body
    assert "J.P." not in message.body and "XYZZY" not in message.body


def twilio_http_sid():
    from tests.fixtures_services import TWILIO_TEST_SID

    return TWILIO_TEST_SID


def assert_code_not_in_database(code):
    """Fail if the code appears in any text column of the sharing tables."""
    from django.apps import apps

    for model in apps.get_app_config("sharing").get_models():
        for row in model.objects.values():
            for value in row.values():
                assert code not in str(value), (model.__name__, row)
    assert not any(code in m.body for m in sms.outbox)  # locmem unused here
