"""Notifications through a real Redis broker, a real Celery worker and real SMTP.

Needs REDIS_URL (skipped without it, failed with PACSSHARE_REQUIRE_SERVICES=1).
"""

import re
import time

import pytest
from django.db import transaction

from sharing.models import Notification, OTPDevice, hash_secret
from sharing.outbox import queue
from sharing.outbox.tasks import send_notification
from tests import factories
from tests.factories import (
    BucketFactory,
    OTPDeviceFactory,
    UserFactory,
    UserGroupFactory,
)
from tests.fixtures_services import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def make_share(**kwargs):
    """The builders' share, in Dutch, of an MRI knee."""
    kwargs = {"message": "Graag uw advies.", "language": "nl", **kwargs}
    return factories.make_share(study_kwargs={"description": "MRI knee"}, **kwargs)


def statuses(ids):
    return list(
        Notification.objects.filter(pk__in=ids).values_list("status", flat=True)
    )


def wait_until_done(ids, timeout=30):
    done = {Notification.Status.SENT, Notification.Status.FAILED}
    wait_for(lambda: all(s in done for s in statuses(ids)) and statuses(ids), timeout)


def test_a_shares_mails_arrive_one_per_recipient(celery_worker, smtp_server):
    share = make_share(urgent=True)
    group = UserGroupFactory(name="Praktijk De Linde")
    group.members.set(
        [UserFactory(email="g1@example.org"), UserFactory(email="g2@example.org")]
    )
    with transaction.atomic():
        user_bucket = BucketFactory(
            share=share, recipient_user=UserFactory(email="dr@example.org")
        )
        group_bucket = BucketFactory(
            share=share, recipient_user=None, recipient_group=group
        )
        created = queue.notifications_queue_for_bucket(bucket=user_bucket)
        created += queue.notifications_queue_for_bucket(bucket=group_bucket)

    wait_until_done([n.pk for n in created])
    received = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    assert sorted(received) == ["dr@example.org", "g1@example.org", "g2@example.org"]
    assert all(len(m.rcpt_tos) == 1 for m in received.values())
    for address, mail in received.items():
        bucket = user_bucket if address == "dr@example.org" else group_bucket
        assert mail.message["To"] == address
        assert (
            mail.subject == "Dringend: Dr. Anna Claes heeft een onderzoek met u gedeeld"
        )
        assert "Patiënt J.P.: MRI knee, 5 maart 2024" in mail.text
        assert f"http://127.0.0.1:8000/b/{bucket.link_token}/" in mail.text
        assert f'href="http://127.0.0.1:8000/b/{bucket.link_token}/"' in mail.html
        assert "Graag uw advies." in mail.text and "Graag uw advies." in mail.html
        assert "XYZZY" not in mail.text and "Peeters" not in mail.text
    assert statuses([n.pk for n in created]) == ["sent"] * 3


def test_the_same_task_delivered_twice_sends_one_mail(celery_worker, smtp_server):
    with transaction.atomic():
        bucket = BucketFactory(share=make_share())
        (notification,) = queue.notifications_queue_for_bucket(bucket=bucket)
        # A second delivery of the very same task (same id), as a broker may do.
        transaction.on_commit(
            lambda: send_notification.apply_async(
                args=[notification.pk], task_id=f"dup-{notification.pk}"
            )
        )
        transaction.on_commit(
            lambda: send_notification.apply_async(
                args=[notification.pk], task_id=f"dup-{notification.pk}"
            )
        )

    wait_until_done([notification.pk])
    time.sleep(1.0)  # let the duplicates reach the worker too
    assert len(smtp_server.messages) == 1
    notification.refresh_from_db()
    assert notification.attempts == 1


def test_a_transient_smtp_failure_is_retried_then_delivered(
    celery_worker, smtp_server, settings
):
    settings.NOTIFICATION_RETRY_BASE = 0.5
    smtp_server.fail_next("421 Service not available, try again later")
    with transaction.atomic():
        bucket = BucketFactory(share=make_share())
        (notification,) = queue.notifications_queue_for_bucket(bucket=bucket)

    wait_until_done([notification.pk])
    notification.refresh_from_db()
    assert notification.status == Notification.Status.SENT
    assert notification.attempts == 2
    assert smtp_server.handler.refused == 1
    assert len(smtp_server.messages) == 1


def test_a_permanent_smtp_failure_ends_failed(celery_worker, smtp_server):
    smtp_server.fail_next("550 No such mailbox")
    with transaction.atomic():
        bucket = BucketFactory(share=make_share())
        (notification,) = queue.notifications_queue_for_bucket(bucket=bucket)

    wait_until_done([notification.pk])
    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    assert notification.attempts == 1
    assert "550" in notification.error
    assert smtp_server.messages == []


def test_a_rolled_back_transaction_sends_nothing(celery_worker, smtp_server):
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = BucketFactory(
            share=make_share(), recipient_user=UserFactory(email="never@example.org")
        )
        queue.notifications_queue_for_bucket(bucket=rolled_back)
        raise RuntimeError("the wizard failed")
    # A committed share queued afterwards: once its mail is in, the worker has
    # had every chance to send the rolled-back one.
    with transaction.atomic():
        bucket = BucketFactory(
            share=make_share(), recipient_user=UserFactory(email="after@example.org")
        )
        (control,) = queue.notifications_queue_for_bucket(bucket=bucket)

    wait_until_done([control.pk])
    assert [m.rcpt_tos for m in smtp_server.messages] == [["after@example.org"]]
    assert Notification.objects.count() == 1


def test_an_otp_sms_goes_through_twilio_with_the_code_nowhere_else(
    celery_worker, twilio_http, caplog
):
    caplog.set_level("DEBUG")
    recipient = UserFactory(mobile="+32475998877", language="de")
    with transaction.atomic():
        device = OTPDeviceFactory(
            bucket=BucketFactory(share=make_share(), recipient_user=recipient)
        )
        notification = queue.notification_queue_otp(device=device)

    wait_until_done([notification.pk])
    (request,) = twilio_http.requests
    assert request["method"] == "POST"
    assert re.fullmatch(
        r"https://api\.twilio\.com/2010-04-01/Accounts/AC[0-9a-f]{32}/Messages\.json",
        request["uri"],
    )
    assert request["data"]["To"] == "+32475998877"
    assert request["data"]["From"] == "+3225550100"
    code = re.search(r"\b(\d{6})\b", request["data"]["Body"]).group(1)
    assert request["data"]["Body"] == (
        f"Ihr PACSshare-Code lautet {code}. Er ist 5 Minuten gültig. "
        "Geben Sie ihn nicht weiter."
    )
    assert OTPDevice.objects.get(pk=device.pk).token_hash == hash_secret(code)
    assert code not in caplog.text
    from tests.sharing.test_notifications import assert_code_not_in_database

    assert_code_not_in_database(code)
