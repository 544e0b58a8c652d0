"""Fixtures and SMS-code helpers shared by the recipient-access and OTP tests.

Their data (``make_bucket()``) comes from tests/factories.py.
"""

import re

import pytest
from django.db import transaction

CODE_RE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def fast_passwords(settings):
    """Hash the factories' passwords cheaply; PBKDF2 costs ~1 s per user here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in-process (after commit), even when REDIS_URL is set."""
    from pacsshare.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


def send_code(bucket, user, capture):
    """Send a code through the real SMS task; return the code read from the SMS."""
    from pacsshare import sms
    from sharing.access.otp import otp_send

    with capture(execute=True), transaction.atomic():
        result = otp_send(bucket=bucket, user=user)
    assert result.sent, result
    return CODE_RE.search(sms.outbox[-1].body).group(1)


def wrong_code(code):
    """Return a 6-digit code that is not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"
