"""Real services for the outbox's fault tests, each one the test can break.

A Redis server of the test's own on a free loopback port (killed and restarted),
an aiosmtpd server stopped and started on the same port, and a Celery worker and
beat as subprocesses (``celery -A pacsshare worker|beat``) pointed at the test's
database, broker and SMTP server through the environment, so the test can
SIGKILL them. The relay's period and the lease are short here; the figures of a
run are printed for the closing note.
"""

import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from django.db import connection, transaction
from django.test.utils import override_settings
from django.utils import timezone

from recipients.models import Department, User
from sharing.models import Bucket, Notification, Share
from sharing.outbox import queue
from studies.models import Patient, Study
from tests.fixtures_services import RecordingHandler, free_port

ROOT = Path(__file__).resolve().parents[2]

# Short on purpose: every fault must heal within RELAY_PERIOD + LEASE (plus the
# relay's minimum age and the time to send what is left).
RELAY_PERIOD = 1.0
RELAY_MIN_AGE = 1.0
LEASE = 5.0
EMAIL_TIMEOUT = 2.0
OUTBOX_ENV = {
    "NOTIFICATION_RELAY_PERIOD": str(RELAY_PERIOD),
    "NOTIFICATION_RELAY_MIN_AGE": str(RELAY_MIN_AGE),
    "NOTIFICATION_LEASE": str(LEASE),
    "EMAIL_TIMEOUT": str(EMAIL_TIMEOUT),
    "NOTIFICATION_RETRY_BASE": "0.2",
    "NOTIFICATION_RETRY_MAX": "1.0",
    "NOTIFICATION_MAX_RETRIES": "10",
}
# The same values for this process, which queues the mails and leases their rows.
OUTBOX_SETTINGS = {
    "NOTIFICATION_RELAY_PERIOD": RELAY_PERIOD,
    "NOTIFICATION_RELAY_MIN_AGE": RELAY_MIN_AGE,
    "NOTIFICATION_LEASE": LEASE,
}
# What "healed" may take: the relay's period, the lease, the minimum age, and a
# margin for a worker's start and the mails still to send.
HEAL_SECONDS = RELAY_PERIOD + LEASE + RELAY_MIN_AGE + 20.0


class RedisServer:
    """``redis-server`` on a free loopback port, without persistence."""

    def __init__(self, folder):
        self.port = free_port()
        self.folder = Path(folder)
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._answers():
                return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def _answers(self):
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class RestartableSmtpServer:
    """An aiosmtpd server that keeps its port and its mails across restarts."""

    def __init__(self):
        self.port = free_port()
        self.handler = RecordingHandler()
        self.controller = None

    def start(self):
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def fail_next(self, *replies):
        with self.handler.lock:
            self.handler.replies.extend(replies)

    def received(self):
        """Return a Counter: notification id -> how many times it arrived."""
        with self.handler.lock:
            messages = list(self.handler.messages)
        return collections.Counter(
            int(m.message["X-PACSshare-Notification"]) for m in messages
        )


@dataclass
class CeleryProcess:
    """``celery -A pacsshare worker`` (solo pool) or ``beat``, as a subprocess."""

    kind: str
    env: dict
    folder: Path
    process: subprocess.Popen = None
    starts: int = 0

    def start(self):
        self.starts += 1
        if self.kind == "worker":
            args = [
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname=faults-{self.starts}@localhost",
            ]
        else:
            args = ["beat", f"--schedule={self.folder / 'beat-schedule'}"]
        log = open(self.folder / f"{self.kind}-{self.starts}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pacsshare",
                *args,
                "-l",
                os.environ.get("FAULTS_LOG_LEVEL", "WARNING"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill(self):
        """SIGKILL the whole process group: no clean shutdown, no ack, no release."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def logs(self):
        return "\n".join(
            path.read_text(errors="replace")[-4000:]
            for path in sorted(self.folder.glob(f"{self.kind}-*.log"))
        )


def service_env(*, redis, smtp, folder):
    """Return the environment of a worker or beat on the test's own services."""
    database = connection.settings_dict
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "REDIS_URL", "EMAIL_", "NOTIFICATION_"))
    }
    env.update(OUTBOX_ENV)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "pacsshare.settings",
            "DATABASE_URL": (
                f"postgres://{database['USER']}@{database['HOST']}:"
                f"{database['PORT']}/{database['NAME']}"
            ),
            "REDIS_URL": redis.url,
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
            "OUTBOX_DIR": str(folder / "outbox"),
            "SMS_BACKEND": "pacsshare.sms.backends.filebased.SmsBackend",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


@contextlib.contextmanager
def in_process_broker(url):
    """Point this process's Celery app at ``url`` (not eager) for the block."""
    from pacsshare.celery import app

    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = url, False
    _reset_pools(app)
    try:
        yield app
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved
        _reset_pools(app)


def _reset_pools(app):
    # Drop the app's references only: kombu keeps its pools per broker URL for the
    # whole process, and closing one would break the next user of that URL.
    app._pool = None
    app.amqp._producer_pool = None


@dataclass
class FaultWorld:
    """The services of one fault test, and what the run measured."""

    redis: RedisServer
    smtp: RestartableSmtpServer
    worker: CeleryProcess
    beat: CeleryProcess
    ids: list = field(default_factory=list)

    def stop_all(self):
        self.worker.kill()
        self.beat.kill()
        self.smtp.stop()
        self.redis.kill()


@contextlib.contextmanager
def fault_world(folder):
    """Start Redis, SMTP, a worker and beat of the test's own; stop them after."""
    folder = Path(folder)
    (folder / "outbox").mkdir(parents=True, exist_ok=True)
    redis, smtp = RedisServer(folder), RestartableSmtpServer()
    redis.start()
    smtp.start()
    env = service_env(redis=redis, smtp=smtp, folder=folder)
    world = FaultWorld(
        redis=redis,
        smtp=smtp,
        worker=CeleryProcess("worker", env, folder),
        beat=CeleryProcess("beat", env, folder),
    )
    try:
        with in_process_broker(redis.url), override_settings(**OUTBOX_SETTINGS):
            world.worker.start()
            world.beat.start()
            yield world
    finally:
        world.stop_all()


def build_share_buckets(count, *, tag="faults"):
    """Create one share with ``count`` user buckets, each with one mail recipient."""
    department = Department.objects.create(name=f"Radiology {tag}", code=tag)
    sender = User.objects.create(
        username=f"{tag}-sender", first_name="Anna", last_name="Claes"
    )
    patient = Patient.objects.create(
        department=department, patient_id="F1", given_name="Jan", family_name="Peeters"
    )
    study = Study.objects.create(
        patient=patient,
        department=department,
        study_instance_uid="1.2.826.0.1.3680043.99.16",
        description="CT thorax",
    )
    share = Share.objects.create(
        sender=sender,
        source_department=department,
        access="read",
        reason="fault test",
        language="en",
        patient_agreed_at=timezone.now(),
        message="Please look at the left lower lobe.",
    )
    share.studies.set([study])
    users = User.objects.bulk_create(
        User(username=f"{tag}-{i}", email=f"{tag}-{i}@example.org", password="!")
        for i in range(count)
    )
    buckets = []
    for user in users:
        bucket = Bucket(share=share, recipient_user=user, require_otp=False)
        bucket.set_link_secret()
        buckets.append(bucket)
    Bucket.objects.bulk_create(buckets)
    return list(
        Bucket.objects.filter(share=share).select_related("share", "recipient_user")
    )


def queue_mails(count):
    """Queue ``count`` share mails in one transaction; return their ids."""
    buckets = build_share_buckets(count)
    with transaction.atomic():
        ids = [
            n.pk
            for bucket in buckets
            for n in queue.notifications_queue_for_bucket(bucket=bucket)
        ]
    assert len(ids) == count
    return ids


def wait_for_sent(world, count, timeout):
    """Wait until ``count`` of the world's mails arrived; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(set(world.smtp.received()) & set(world.ids)) >= count:
            return True
        time.sleep(0.05)
    return False


def wait_until_all_sent(world, timeout):
    """Wait until every row is sent and every mail arrived; return seconds taken."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        sent = Notification.objects.filter(
            pk__in=world.ids, status=Notification.Status.SENT
        ).count()
        if sent == len(world.ids) and set(world.ids) <= set(world.smtp.received()):
            return time.monotonic() - started
        time.sleep(0.1)
    return None


@dataclass
class Outcome:
    fault: str
    queued: int
    delivered: int
    lost: int
    duplicates: int
    kills: int
    healed_in: float | None
    statuses: dict

    def line(self):
        healed = "never" if self.healed_in is None else f"{self.healed_in:.1f} s"
        return (
            f"outbox fault [{self.fault}]: {self.queued} mails, {self.delivered} "
            f"delivered, {self.lost} lost, {self.duplicates} duplicates "
            f"(kills {self.kills}), healed {healed} after the fault ended "
            f"(limit {HEAL_SECONDS:.0f} s); statuses {self.statuses}"
        )


def outcome(world, *, fault, kills, healed_in):
    time.sleep(1.0)  # a late duplicate, if any, has time to arrive
    received = world.smtp.received()
    statuses = collections.Counter(
        Notification.objects.filter(pk__in=world.ids).values_list("status", flat=True)
    )
    result = Outcome(
        fault=fault,
        queued=len(world.ids),
        delivered=sum(1 for pk in world.ids if received[pk] >= 1),
        lost=sum(1 for pk in world.ids if received[pk] == 0),
        duplicates=sum(received[pk] - 1 for pk in world.ids if received[pk] > 1),
        kills=kills,
        healed_in=healed_in,
        statuses=dict(statuses),
    )
    print(result.line())
    return result
