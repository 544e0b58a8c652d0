import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The directory tests create many users; their passwords need not be strong."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
