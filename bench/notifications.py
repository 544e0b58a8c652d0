#!/usr/bin/env python
"""Push share mails through a real Celery worker to a real SMTP server; count them.

In one run, on the same worker process (``celery -A pacsshare worker``, solo
pool) and the same Redis broker (a ``redis-server`` of the benchmark's own on a
free port), it measures:

(a) a no-op task's rate (Celery's built-in ``celery.accumulate``): the ceiling;
(b) share mails with no injected fault, from the commit that queued them to the
    last one received by an aiosmtpd server on a free port;
(c) the exactly-once run: every --duplicate-every'th task is published a second
    time and the SMTP server answers 421 to every --transient-every'th message.

It prints the rates, (b)/(a) (goal: at least 0.25) and the mails lost and
duplicated in (c) (goal: 0 of each). The SMTP server accepts a message as an MTA
does, keeping its bytes without parsing them before its answer, and the runs are
watched through the server's count of messages (the database is asked only when
that count is reached, or once a second), so the benchmark's own process takes as
little as it can from the worker it measures. The data goes to a database of its own
("bench_notifications" on the PostgreSQL server of DATABASE_URL, or a SQLite file
under var/bench/ without it; dev data is never touched).

    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/notifications.py
"""

import argparse
import collections
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from own_database import use_own_database  # noqa: E402  (bench/ is on sys.path)

BENCH_DB = "bench_notifications"


def build_share(count, run):
    """Create a share with ``count`` user buckets; return the buckets."""
    from recipients.models import Department, User
    from sharing.models import Bucket, Share
    from studies.models import Patient, Study

    department = Department.objects.create(name=f"Bench {run}", code=f"bench-{run}")
    sender = User.objects.create(
        username=f"bench-{run}-sender", first_name="Bench", last_name="Sender"
    )
    patient = Patient.objects.create(
        department=department, patient_id=f"B{run}", given_name="Jan", family_name="B"
    )
    study = Study.objects.create(
        patient=patient,
        department=department,
        study_instance_uid=f"1.2.826.0.1.3680043.{run}",
        description="CT thorax",
    )
    share = Share.objects.create(
        sender=sender,
        source_department=department,
        access="read",
        reason="benchmark",
        language="en",
        patient_agreed_at=department_now(),
        message="Benchmark message",
    )
    share.studies.set([study])
    users = User.objects.bulk_create(
        User(
            username=f"bench-{run}-{i}",
            email=f"bench-{run}-{i}@bench.invalid",
            password="!",  # unusable
        )
        for i in range(count)
    )
    buckets = []
    for user in users:
        bucket = Bucket(share=share, recipient_user=user, require_otp=False)
        bucket.set_link_secret()
        buckets.append(bucket)
    Bucket.objects.bulk_create(buckets)
    return department, list(
        Bucket.objects.filter(share=share).select_related(
            "share__sender", "recipient_user"
        )
    )


def department_now():
    from django.utils import timezone

    return timezone.now()


def cleanup(department):
    """Delete everything the run created (notifications go with their buckets)."""
    from recipients.models import User
    from sharing.models import Bucket, Share
    from studies.models import Patient, Study

    shares = Share.objects.filter(source_department=department)
    user_ids = set(shares.values_list("buckets__recipient_user", flat=True))
    user_ids |= set(shares.values_list("sender", flat=True))
    Bucket.objects.filter(share__in=shares).delete()
    shares.delete()
    User.objects.filter(pk__in=user_ids - {None}).delete()
    Study.objects.filter(department=department).delete()
    Patient.objects.filter(department=department).delete()
    department.delete()


class AcceptingHandler:
    """An aiosmtpd handler that keeps each message's bytes, or fails with replies.

    Unlike the tests' RecordingHandler it parses nothing before it answers: an
    MTA's answer costs it little, and this server shares the benchmark's process.
    """

    def __init__(self):
        self.raw = []
        self.replies = collections.deque()
        self.refused = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.replies:
                self.refused += 1
                return self.replies.popleft()
            self.raw.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


NOTIFICATION_HEADER = re.compile(rb"^X-PACSshare-Notification: *(\d+)", re.MULTILINE)


def accepting_smtp_server():
    """Return the fault tests' restartable SMTP server with an AcceptingHandler."""
    from tests.sharing.outbox_faults import RestartableSmtpServer

    class AcceptingSmtpServer(RestartableSmtpServer):
        def __init__(self):
            super().__init__()
            self.handler = AcceptingHandler()

        def count(self):
            with self.handler.lock:
                return len(self.handler.raw)

        def received(self):
            """Return a Counter: notification id -> how many times it arrived."""
            with self.handler.lock:
                raw = list(self.handler.raw)
            return collections.Counter(
                int(NOTIFICATION_HEADER.search(message).group(1)) for message in raw
            )

    return AcceptingSmtpServer()


def wait_for_drain(redis_client, timeout):
    """Wait until the broker's queue and its unacked messages are empty."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not redis_client.llen("celery") and not redis_client.hlen("unacked"):
            return True
        time.sleep(0.01)
    return False


def noop_rate(app, redis_client, count, timeout):
    """Return the no-op tasks per second the worker runs, publish to drain."""
    started = time.monotonic()
    with app.producer_or_acquire() as producer:
        for i in range(count):
            app.send_task("celery.accumulate", args=[i], producer=producer)
    if not wait_for_drain(redis_client, timeout):
        raise SystemExit("notifications: the no-op tasks did not drain in time")
    return count / (time.monotonic() - started)


def mail_run(buckets, server, *, duplicate_every, timeout):
    """Queue one mail per bucket in one transaction; wait for all; return figures."""
    from django.db import transaction

    from sharing.models import Notification
    from sharing.outbox import queue
    from sharing.outbox.tasks import send_notification

    before = server.received()
    count_before = server.count()
    refused_before = server.handler.refused
    started = time.monotonic()
    ids, duplicates = [], []
    with transaction.atomic():
        for bucket in buckets:
            ids += [n.pk for n in queue.notifications_queue_for_bucket(bucket=bucket)]
        duplicates = ids[::duplicate_every] if duplicate_every else []
        for pk in duplicates:
            transaction.on_commit(
                lambda pk=pk: send_notification.apply_async(
                    args=[pk], task_id=f"bench-dup-{pk}"
                )
            )
    committed = time.monotonic()
    pending = ids
    deadline = started + timeout
    asked = 0.0
    while time.monotonic() < deadline:
        # The server's count is cheap; the database is asked once every mail may
        # be in, or once a second (a mail may have failed, or arrived twice).
        arrived = server.count() - count_before >= len(ids)
        if arrived or time.monotonic() - asked >= 1.0:
            asked = time.monotonic()
            pending = list(
                Notification.objects.filter(
                    pk__in=pending, status__in=["pending", "sending"]
                ).values_list("pk", flat=True)
            )
            if not pending:
                break
        time.sleep(0.01 if not arrived else 0.05)
    finished = time.monotonic()
    time.sleep(1.0)  # let late duplicates reach the server, if any slipped
    received = server.received() - before
    statuses = collections.Counter(
        Notification.objects.filter(pk__in=ids).values_list("status", flat=True)
    )
    attempts = sum(
        Notification.objects.filter(pk__in=ids).values_list("attempts", flat=True)
    )
    return {
        "count": len(ids),
        "queue_seconds": committed - started,
        "seconds": finished - committed,
        "rate": len(ids) / (finished - committed),
        "received": sum(received.values()),
        "lost": sum(1 for pk in ids if received[pk] == 0),
        "duplicated": sum(n - 1 for n in received.values() if n > 1),
        "duplicates_sent": len(duplicates),
        "refused": server.handler.refused - refused_before,
        "attempts": attempts,
        "statuses": dict(statuses),
        "pending": len(pending),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--noop-count", type=int, default=3000)
    parser.add_argument("--duplicate-every", type=int, default=10)
    parser.add_argument("--transient-every", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    if not os.environ.get("REDIS_URL"):
        print("notifications: skipped (set REDIS_URL to run it through a real broker)")
        return 0
    use_own_database(BENCH_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pacsshare.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # As in production, here too: no query log in the process that watches.
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "0123456789abcdef" * 3)
    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from django.test.utils import override_settings

    from tests.sharing.outbox_faults import (
        CeleryProcess,
        RedisServer,
        in_process_broker,
        service_env,
    )

    call_command("migrate", verbosity=0)
    run = int(time.time())
    department, buckets = build_share(args.count * 2, run)
    folder = Path(tempfile.mkdtemp(prefix="pacsshare-bench-notifications-"))
    (folder / "outbox").mkdir()
    broker, server = RedisServer(folder), accepting_smtp_server()
    broker.start()
    server.start()
    env = service_env(redis=broker, smtp=server, folder=folder)
    # The production lease and relay; retries quick enough for the 421 answers.
    for name in (
        "NOTIFICATION_LEASE",
        "NOTIFICATION_RELAY_PERIOD",
        "NOTIFICATION_RELAY_MIN_AGE",
        "EMAIL_TIMEOUT",
        "NOTIFICATION_MAX_RETRIES",
    ):
        env.pop(name, None)
    env["NOTIFICATION_RETRY_BASE"] = "0.2"
    # As in production: no query log, no debug machinery on the worker.
    env["DEBUG"] = "0"
    env.setdefault("SECRET_KEY", "bench-only-" + "0123456789abcdef" * 3)
    worker = CeleryProcess("worker", env, folder)
    try:
        with (
            in_process_broker(broker.url) as app,
            override_settings(NOTIFICATION_RETRY_BASE=0.2),
        ):
            worker.start()
            redis_client = redis.Redis.from_url(broker.url)
            # Warm up: the worker has started and each path has run once.
            noop_rate(app, redis_client, 50, timeout=120)
            mail_run(buckets[:10], server, duplicate_every=0, timeout=120)
            noop = noop_rate(app, redis_client, args.noop_count, args.timeout)
            clean = mail_run(
                buckets[10 : args.count],
                server,
                duplicate_every=0,
                timeout=args.timeout,
            )
            if args.transient_every:
                server.fail_next(
                    *["421 Busy, try later"] * (args.count // args.transient_every)
                )
            faults = mail_run(
                buckets[args.count : 2 * args.count],
                server,
                duplicate_every=args.duplicate_every,
                timeout=args.timeout,
            )
    finally:
        worker.kill()
        server.stop()
        broker.kill()
        cleanup(department)

    ratio = clean["rate"] / noop
    print(f"notifications: no-op task {noop:.1f} tasks/s (1 worker, solo pool)")
    print(
        f"notifications: clean run {clean['received']} mails received by SMTP "
        f"{clean['seconds']:.2f} s after the commit = {clean['rate']:.1f} mails/s"
    )
    print(f"notifications: clean/no-op ratio {ratio:.2f} (goal >= 0.25)")
    print(
        f"notifications: fault run {faults['count']} mails queued in "
        f"{faults['queue_seconds']:.2f} s, {faults['received']} received "
        f"{faults['seconds']:.2f} s after the commit = {faults['rate']:.1f} mails/s"
    )
    print(
        f"notifications: fault run extra deliveries of the same task "
        f"{faults['duplicates_sent']}, 421 answers {faults['refused']}, "
        f"send attempts {faults['attempts']}"
    )
    print(
        f"notifications: fault run statuses {faults['statuses']}; "
        f"still pending {faults['pending']}"
    )
    lost = clean["lost"] + faults["lost"]
    duplicated = clean["duplicated"] + faults["duplicated"]
    print(f"notifications: lost {lost}, duplicated {duplicated}")
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
