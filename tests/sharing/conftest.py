import pytest

from tests.fixtures_services import (  # noqa: F401
    celery_worker,
    sms_outbox,
    smtp_server,
    twilio_http,
)
from tests.sharing.wizard_support import sender_client, world  # noqa: F401


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # UserFactory sets a password; the default PBKDF2 costs about a second a user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
