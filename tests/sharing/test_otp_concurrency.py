"""Concurrent code submissions on PostgreSQL: the bucket row lock keeps the count.

Each thread has its own database connection (closed at the end), as concurrent
requests would in production.
"""

import threading

import pytest
from django.db import connection

from sharing.access.otp import VerifyStatus, otp_verify
from sharing.models import AuditEvent, Bucket
from tests.factories import make_bucket
from tests.sharing.access_helpers import (  # noqa: F401
    send_code,
    wrong_code,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sms_outbox"),
]

THREADS = 20


def submit_concurrently(bucket, codes):
    """Submit each code from its own thread, all released at once; return results."""
    barrier = threading.Barrier(len(codes))
    results = [None] * len(codes)
    errors = []

    def worker(index, code):
        try:
            barrier.wait(timeout=30)
            results[index] = otp_verify(
                bucket=bucket, user=bucket.recipient_user, code=code
            )
        except Exception as exc:  # reported below, with the thread's index
            errors.append((index, exc))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(i, code)) for i, code in enumerate(codes)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_twenty_concurrent_wrong_codes_count_exactly_five(
    django_capture_on_commit_callbacks,
):
    bucket = make_bucket()
    code = send_code(bucket, bucket.recipient_user, django_capture_on_commit_callbacks)

    results = submit_concurrently(bucket, [wrong_code(code)] * THREADS)

    counted = [r for r in results if r.status == VerifyStatus.WRONG or r.locked_now]
    assert len(counted) == 5
    assert sum(r.locked_now for r in results) == 1
    assert all(r.status == VerifyStatus.LOCKED for r in results if r not in counted)
    bucket = Bucket.objects.get(pk=bucket.pk)
    assert bucket.failed_otp_attempts == 5
    assert bucket.locked_at is not None
    events = AuditEvent.objects.filter(bucket=bucket)
    assert events.filter(action="bucket_locked").count() == 1
    assert events.filter(action="otp_failed", details__outcome="wrong").count() == 5


def test_twenty_concurrent_right_codes_open_exactly_once(
    django_capture_on_commit_callbacks,
):
    bucket = make_bucket()
    code = send_code(bucket, bucket.recipient_user, django_capture_on_commit_callbacks)

    results = submit_concurrently(bucket, [code] * THREADS)

    assert sum(r.ok for r in results) == 1
    # The others came too late for the single-use code: refused, never counted.
    assert {r.status for r in results if not r.ok} == {VerifyStatus.NO_CODE}
    bucket = Bucket.objects.get(pk=bucket.pk)
    assert bucket.failed_otp_attempts == 0
    assert bucket.locked_at is None
    assert AuditEvent.objects.filter(bucket=bucket, action="otp_succeeded").count() == 1


def test_concurrent_wrong_and_right_codes_never_count_past_five(
    django_capture_on_commit_callbacks,
):
    bucket = make_bucket()
    code = send_code(bucket, bucket.recipient_user, django_capture_on_commit_callbacks)

    results = submit_concurrently(bucket, [wrong_code(code)] * 15 + [code] * 5)

    bucket = Bucket.objects.get(pk=bucket.pk)
    successes = sum(r.ok for r in results)
    # Either the right code got in before a fifth wrong one, or the lock won:
    # never both, never neither.
    assert (successes == 1) != (bucket.locked_at is not None)
    assert successes <= 1
    assert bucket.failed_otp_attempts <= 5
    assert AuditEvent.objects.filter(bucket=bucket, action="bucket_locked").count() <= 1
