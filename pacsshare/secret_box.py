"""Secrets PACSshare must send on in clear (a PACS's password), sealed at rest.

`seal()` encrypts with Fernet (AES-128-CBC and HMAC-SHA256, from the
cryptography package) under a key derived from SECRET_KEY; `unseal()` also
opens what was sealed under a SECRET_KEY_FALLBACKS key, so a key rotation keeps
them readable until they are saved again. A database dump alone gives nothing
back. `SealedCharField` does both on the way to and from the database.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

PREFIX = "sealed:v1:"


def _fernet_for(secret_key):
    digest = hashlib.sha256(b"pacsshare.secret_box:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _box():
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet_for(key) for key in keys])


def is_sealed(value):
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(text):
    """Return `text` sealed (empty stays empty: nothing to hide)."""
    if not text:
        return ""
    return PREFIX + _box().encrypt(text.encode()).decode()


def unseal(value):
    """Return the clear text of a sealed value ("" for empty).

    Raises ValueError when no current or fallback key opens it.
    """
    if not value:
        return ""
    if not is_sealed(value):
        raise ValueError("Not a sealed value.")
    try:
        return _box().decrypt(value[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ValueError("No SECRET_KEY opens this sealed value.") from None


class SealedCharField(models.CharField):
    """A CharField whose value is stored sealed and reads back in clear.

    The column holds the sealed form (`max_length` is the column's; the clear
    text is checked by the form). A value no key opens reads as "" (the admin
    then asks for it again) rather than failing the page.
    """

    def from_db_value(self, value, expression, connection):
        try:
            return unseal(value)
        except ValueError:
            return ""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return value if is_sealed(value) else seal(value)
