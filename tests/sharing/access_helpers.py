"""Builders and fixtures shared by the recipient-access and OTP tests."""

import datetime
import re

import pytest
from django.db import transaction

from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    MembershipFactory,
    PatientFactory,
    SeriesFactory,
    ShareFactory,
    StudyFactory,
    UserFactory,
)

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


def make_bucket(
    *,
    recipient=None,
    require_otp=True,
    department=None,
    message="Please look at the left lower lobe.",
    study_kwargs=None,
    bucket_kwargs=None,
    **share_kwargs,
):
    """Return a bucket of a one-study share from "Radiologie AZ Sint-Jan"."""
    if department is None:
        department = DepartmentFactory(name="Radiologie AZ Sint-Jan")
        admin = UserFactory(
            first_name="Ada", last_name="Admin", email="admin@azsintjan.example"
        )
        MembershipFactory(user=admin, department=department, is_admin=True)
    patient = PatientFactory(
        department=department, given_name="Jan", family_name="Peeters"
    )
    study = StudyFactory(
        patient=patient,
        **{
            "description": "CT thorax",
            "study_date": datetime.date(2024, 3, 5),
            **(study_kwargs or {}),
        },
    )
    SeriesFactory(study=study, description="Axial 1mm")
    sender = UserFactory(first_name="Anna", last_name="Claes", title="Dr.")
    share = ShareFactory(
        studies=[study],
        sender=sender,
        source_department=department,
        message=message,
        reason="Confidential reason XYZZY",
        **share_kwargs,
    )
    bucket_kwargs = dict(bucket_kwargs or {})
    if "recipient_group" in bucket_kwargs or "recipient_department" in bucket_kwargs:
        bucket_kwargs.setdefault("recipient_user", None)
    else:
        bucket_kwargs["recipient_user"] = recipient or UserFactory(
            mobile="+32475123456"
        )
    return BucketFactory(share=share, require_otp=require_otp, **bucket_kwargs)


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
