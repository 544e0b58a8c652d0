"""With the broker down, pages that queue a message still answer, and the message
goes out, with no human action, once the broker is back.

The wizard's final POST and the SMS code page run in this process against a
Redis server of the test's own that is not running; then the test starts it, a
worker and beat (subprocesses), and waits for the relay to send what was left.
"""

import contextlib
import logging
import time

import pytest
from django.test.utils import override_settings
from django.urls import reverse

from sharing.models import Notification, Share
from sharing.outbox import queue
from sharing.outbox.tasks import notifications_fan_out
from tests.factories import UserFactory, make_bucket
from tests.factories import build_wizard_world as make_world
from tests.sharing.outbox_faults import (
    HEAL_SECONDS,
    OUTBOX_SETTINGS,
    CeleryProcess,
    RedisServer,
    RestartableSmtpServer,
    in_process_broker,
    service_env,
)
from tests.sharing.wizard_support import (
    key,
    parameters_data,
    post_step,
    run_until_parameters,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


class DownBroker:
    """A broker that is down until ``start()``, then a worker and beat on it."""

    def __init__(self, folder):
        (folder / "outbox").mkdir(parents=True)
        self.folder = folder
        self.redis = RedisServer(folder)
        self.smtp = RestartableSmtpServer()
        self.processes = []

    def start(self):
        self.redis.start()
        env = service_env(redis=self.redis, smtp=self.smtp, folder=self.folder)
        for kind in ("worker", "beat"):
            process = CeleryProcess(kind, env, self.folder)
            process.start()
            self.processes.append(process)

    def stop(self):
        for process in self.processes:
            process.kill()
        self.redis.kill()
        self.smtp.stop()


@pytest.fixture
def broker(tmp_path):
    down = DownBroker(tmp_path / "services")
    down.smtp.start()
    with contextlib.ExitStack() as stack:
        stack.callback(down.stop)
        stack.enter_context(in_process_broker(down.redis.url))
        stack.enter_context(override_settings(**OUTBOX_SETTINGS))
        yield down


def wait_until_sent(ids, timeout=HEAL_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = set(
            Notification.objects.filter(pk__in=ids).values_list("status", flat=True)
        )
        if statuses == {Notification.Status.SENT}:
            return True
        time.sleep(0.2)
    return False


def test_the_wizard_shares_once_and_mails_later_when_the_broker_is_down(
    client, broker, caplog
):
    world = make_world()
    client.force_login(world.sender)
    run_until_parameters(
        client,
        world.studies,
        [(key(world.fr), False, True), (key(world.nl), False, True)],
    )

    with caplog.at_level(logging.WARNING, logger="sharing.outbox.queue"):
        response = post_step(client, "parameters", parameters_data())
    page = client.get(response.url)
    resubmitted = post_step(client, "parameters", parameters_data())

    share = Share.objects.get()
    assert resubmitted.status_code < 500
    assert response.status_code == 302
    assert response.url == reverse("sharing:share_done", args=[share.pk])
    assert page.status_code == 200
    mails = list(Notification.objects.filter(bucket__share=share))
    assert len(mails) == 2
    assert {m.status for m in mails} == {Notification.Status.PENDING}
    assert "the broker refused its task" in caplog.text

    broker.start()

    assert wait_until_sent([m.pk for m in mails]), broker.processes[0].logs()
    arrived = {str(m.message["To"]) for m in broker.smtp.handler.messages}
    assert arrived == {world.fr.email, world.nl.email}
    assert Share.objects.count() == 1


def test_the_code_page_answers_and_the_sms_goes_later_when_the_broker_is_down(
    client, broker, caplog
):
    recipient = UserFactory(mobile="+32475123456")
    bucket = make_bucket(recipient=recipient)
    client.force_login(recipient)

    with caplog.at_level(logging.WARNING, logger="sharing.outbox.queue"):
        page = client.get(
            reverse("sharing:bucket_code", kwargs={"bucket_id": bucket.pk})
        )

    assert page.status_code == 200
    (sms,) = Notification.objects.filter(kind=Notification.Kind.OTP)
    assert sms.status == Notification.Status.PENDING
    assert "the broker refused its task" in caplog.text

    broker.start()

    assert wait_until_sent([sms.pk]), broker.processes[0].logs()
    sent = list((broker.folder / "outbox" / "sms").iterdir())
    assert len(sent) == 1 and "+32475123456" in sent[0].read_text()


def test_a_fan_out_the_broker_refuses_on_the_worker_leaves_every_mail_to_the_relay(
    broker, caplog
):
    # A share's mails went to the broker as one fan-out task; the broker is
    # gone when the worker runs it. The rows still hold the broker's lease.
    bucket = make_bucket(
        recipient=UserFactory(email="one@example.org"), require_otp=False
    )
    others = [
        make_bucket(recipient=UserFactory(email=f"{n}@example.org"), require_otp=False)
        for n in ("two", "three")
    ]
    buckets = [bucket, *others]
    mails = [
        Notification.objects.create(
            channel=Notification.Channel.EMAIL,
            kind=Notification.Kind.SHARE,
            bucket=b,
            user=b.recipient_user,
            to_address=b.recipient_user.email,
            language="en",
            leased_until=queue.broker_lease(),
        )
        for b in buckets
    ]

    with caplog.at_level(logging.WARNING, logger="sharing.outbox.tasks"):
        notifications_fan_out([m.pk for m in mails])

    # Nothing waits for the lease to run out: the relay may take them at once.
    assert "the broker refused their tasks" in caplog.text
    assert not Notification.objects.filter(
        pk__in=[m.pk for m in mails], leased_until__isnull=False
    ).exists()

    broker.start()

    assert wait_until_sent([m.pk for m in mails]), broker.processes[0].logs()
    arrived = sorted(str(m.message["To"]) for m in broker.smtp.handler.messages)
    assert arrived == ["one@example.org", "three@example.org", "two@example.org"]
