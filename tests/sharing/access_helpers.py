"""Fixtures and SMS-code helpers shared by the recipient-access and OTP tests.

Their data (``make_bucket()``) comes from tests/factories.py.
"""

import re

from django.db import transaction

CODE_RE = re.compile(r"\b(\d{6})\b")


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
