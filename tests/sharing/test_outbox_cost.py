"""What a share mail costs the worker: two statements, nothing of the share loaded.

Runs on SQLite in-process and on PostgreSQL with services; the throughput itself
is measured by bench/notifications.py.
"""

import time
from unittest import mock

import pytest
from django.core import mail
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from pacsshare.celery import close_spoiled_database_connections
from sharing.models import Notification
from sharing.outbox import queue
from sharing.outbox.tasks import send_notification
from tests.factories import BucketFactory, UserFactory, UserGroupFactory, make_share

pytestmark = pytest.mark.django_db


def queue_only(bucket):
    """Queue the bucket's mails without running their tasks."""
    with transaction.atomic():
        return queue.notifications_queue_for_bucket(bucket=bucket)


def test_a_share_mail_is_sent_with_two_statements(django_capture_on_commit_callbacks):
    bucket = BucketFactory(share=make_share(), recipient_user=UserFactory())
    with django_capture_on_commit_callbacks(execute=False):
        (notification,) = queue_only(bucket)

    with CaptureQueriesContext(connection) as queries:
        assert send_notification.run(notification.pk) == "sent"

    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2, statements
    assert "RETURNING" in statements[0]
    assert len(mail.outbox) == 1
    assert f"/b/{bucket.link_token}/" in mail.outbox[0].body
    notification.refresh_from_db()
    assert notification.status == Notification.Status.SENT
    assert notification.attempts == 1


def test_a_row_queued_without_its_context_still_gets_the_same_mail(
    django_capture_on_commit_callbacks,
):
    group = UserGroupFactory(name="Praktijk De Linde")
    group.members.set([UserFactory(email="g1@example.org", first_name="Griet")])
    bucket = BucketFactory(
        share=make_share(), recipient_user=None, recipient_group=group
    )
    with django_capture_on_commit_callbacks(execute=False):
        first, second = queue_only(bucket) + queue_only(bucket)
    # As a row queued before rows kept their mail's context.
    Notification.objects.filter(pk=second.pk).update(mail_context=None)

    assert send_notification.run(first.pk) == "sent"
    assert send_notification.run(second.pk) == "sent"

    kept, built = mail.outbox
    assert kept.subject == built.subject
    assert kept.body == built.body
    assert "Praktijk De Linde" in built.body and "Griet" in built.body
    assert bucket.link_token not in str(
        Notification.objects.get(pk=first.pk).mail_context
    )


def test_a_claimed_row_is_not_claimed_again(django_capture_on_commit_callbacks):
    bucket = BucketFactory(share=make_share(), recipient_user=UserFactory())
    with django_capture_on_commit_callbacks(execute=False):
        (notification,) = queue_only(bucket)

    assert send_notification.run(notification.pk) == "sent"
    assert send_notification.run(notification.pk) == "skipped"
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_a_sound_connection_and_drops_a_spoiled_one():
    database = connections["default"]
    Notification.objects.exists()  # open the connection
    saved_close_at = database.close_at
    database.close_at = time.monotonic() + 60  # as with CONN_MAX_AGE=60
    try:
        with mock.patch.object(database, "close") as close:
            close_spoiled_database_connections(sender=None)
            assert not close.called

            database.errors_occurred = True
            close_spoiled_database_connections(sender=None)
            assert close.call_count == 1

            database.errors_occurred = False
            database.close_at = time.monotonic() - 1
            close_spoiled_database_connections(sender=None)
            assert close.call_count == 2
    finally:
        database.errors_occurred = False
        database.close_at = saved_close_at
