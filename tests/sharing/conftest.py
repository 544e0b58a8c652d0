import pytest

from tests.fixtures_services import (  # noqa: F401
    celery_worker,
    sms_outbox,
    smtp_server,
    twilio_http,
)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # UserFactory sets a password; the default PBKDF2 costs about a second a user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
