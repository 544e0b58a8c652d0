#!/usr/bin/env python
"""Push share mails through a real Celery worker to a real SMTP server; count them.

Creates one share with N user buckets (default 1,000) in a database of its own
("bench_notifications" on the PostgreSQL server of DATABASE_URL, or a SQLite file
under var/bench/ without it; dev data is never touched), queues their mails in one
transaction, and lets a Celery worker (solo pool, in this process) on the Redis
broker of REDIS_URL deliver them to an aiosmtpd server on a free port. To exercise
exactly-once delivery under stress, every --duplicate-every'th task is published a
second time (same task id) and the SMTP server answers 421 to every
--transient-every'th message, so those are retried.

Prints the throughput and the number of mails lost (never arrived) and duplicated
(arrived more than once); the goal is zero of each.

    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/notifications.py
"""

import argparse
import collections
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "bench_notifications"


def use_own_database():
    """Point DATABASE_URL at a database of the benchmark's own; create it if needed."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg2

        parsed = urlparse(url)
        admin = psycopg2.connect(urlunparse(parsed._replace(path="/postgres")))
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB])
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{BENCH_DB}"')
        admin.close()
        os.environ["DATABASE_URL"] = urlunparse(parsed._replace(path=f"/{BENCH_DB}"))
    else:
        folder = ROOT / "var" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{folder / (BENCH_DB + '.sqlite3')}"


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--duplicate-every", type=int, default=10)
    parser.add_argument("--transient-every", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--concurrency", type=int, default=1, help="worker threads (1: solo pool)"
    )
    args = parser.parse_args()

    if not os.environ.get("REDIS_URL"):
        print("notifications: skipped (set REDIS_URL to run it through a real broker)")
        return 0
    use_own_database()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pacsshare.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from django.test.utils import override_settings

    from sharing.models import Notification
    from sharing.outbox import queue
    from sharing.outbox.tasks import send_notification
    from tests.fixtures_services import (
        running_celery_worker,
        running_smtp_server,
        smtp_settings,
    )

    call_command("migrate", verbosity=0)
    run = int(time.time())
    department, buckets = build_share(args.count, run)
    try:
        with (
            running_smtp_server() as server,
            override_settings(**smtp_settings(server), NOTIFICATION_RETRY_BASE=0.2),
            running_celery_worker(
                loglevel="WARNING",
                pool="solo" if args.concurrency == 1 else "threads",
                concurrency=args.concurrency,
            ),
        ):
            if args.transient_every:
                server.fail_next(
                    *["421 Busy, try later"] * (args.count // args.transient_every)
                )
            started = time.monotonic()
            ids = []
            with transaction.atomic():
                for bucket in buckets:
                    ids += [
                        n.pk
                        for n in queue.notifications_queue_for_bucket(bucket=bucket)
                    ]
                duplicates = (
                    ids[:: args.duplicate_every] if args.duplicate_every else []
                )
                for pk in duplicates:
                    transaction.on_commit(
                        lambda pk=pk: send_notification.apply_async(
                            args=[pk], task_id=f"bench-dup-{pk}"
                        )
                    )
            queued = time.monotonic()
            pending = ids
            deadline = started + args.timeout
            while time.monotonic() < deadline:
                pending = list(
                    Notification.objects.filter(
                        pk__in=ids, status__in=["pending", "sending"]
                    ).values_list("pk", flat=True)
                )
                if not pending:
                    break
                time.sleep(0.2)
            finished = time.monotonic()
            time.sleep(2.0)  # let late duplicates reach the server, if any slipped
            received = collections.Counter(
                int(m.message["X-PACSshare-Notification"]) for m in server.messages
            )
            refused = server.handler.refused
    finally:
        statuses = collections.Counter(
            Notification.objects.filter(
                bucket__share__source_department=department
            ).values_list("status", flat=True)
        )
        attempts = sum(
            Notification.objects.filter(
                bucket__share__source_department=department
            ).values_list("attempts", flat=True)
        )
        cleanup(department)

    elapsed = finished - queued  # from the commit to the last mail
    pool = (
        "1 worker, solo pool"
        if args.concurrency == 1
        else f"1 worker, {args.concurrency} threads"
    )
    lost = sum(1 for pk in ids if received[pk] == 0)
    duplicated = sum(n - 1 for n in received.values() if n > 1)
    print(
        f"notifications: {len(ids)} share mails queued in one transaction in "
        f"{queued - started:.2f} s"
    )
    print(
        f"notifications: {sum(received.values())} mails received by SMTP "
        f"{elapsed:.2f} s after the commit = {len(ids) / elapsed:.1f} mails/s ({pool})"
    )
    print(
        f"notifications: extra deliveries of the same task {len(duplicates)}, "
        f"421 answers {refused}, send attempts {attempts}"
    )
    print(f"notifications: statuses {dict(statuses)}; still pending {len(pending)}")
    print(f"notifications: lost {lost}, duplicated {duplicated}")
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
