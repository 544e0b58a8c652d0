"""Send SMS through a configurable backend, shaped like ``django.core.mail``.

``settings.SMS_BACKEND`` names the backend class: console, filebased (the local
outbox), locmem (tests; messages land in ``pacsshare.sms.outbox``) or twilio.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string

from .exceptions import PermanentSmsError, SmsError, TransientSmsError

__all__ = [
    "PermanentSmsError",
    "SmsError",
    "SmsMessage",
    "TransientSmsError",
    "get_connection",
    "mask_number",
    "outbox",
    "send_sms",
]

# The locmem backend appends here, like django.core.mail.outbox.
outbox = []


@dataclass
class SmsMessage:
    """One text message; ``provider_id`` is filled in by the backend that sends it."""

    to: str
    body: str
    from_: str = ""
    provider_id: str = field(default="", compare=False)

    def __repr__(self):
        # The body may hold a one-time password: keep it out of reprs and tracebacks.
        return f"SmsMessage(to={mask_number(self.to)!r})"


def get_connection(backend=None, fail_silently=False, **kwargs):
    """Return an instance of the SMS backend (``settings.SMS_BACKEND`` by default)."""
    klass = import_string(backend or settings.SMS_BACKEND)
    return klass(fail_silently=fail_silently, **kwargs)


def send_sms(to, body, *, from_="", fail_silently=False, connection=None):
    """Send one SMS and return the provider's id for it ("" when it has none)."""
    connection = connection or get_connection(fail_silently=fail_silently)
    message = SmsMessage(to=to, body=body, from_=from_)
    connection.send_messages([message])
    return message.provider_id


def mask_number(number):
    """Return a phone number with all but its last two digits hidden, for logs."""
    return f"…{number[-2:]}" if number else ""
