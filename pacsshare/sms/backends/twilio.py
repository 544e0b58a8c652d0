"""Send SMS through Twilio's Messages API with the twilio library's ``Client``.

The HTTP transport can be replaced (``http_client=`` or ``settings.TWILIO_HTTP_CLIENT``,
a dotted path to a ``twilio.http.HttpClient`` subclass); nothing else is.
Errors become ``TransientSmsError`` (429, 5xx, network) or ``PermanentSmsError``
(other 4xx). The body is never logged: it may hold a one-time password.
"""

import logging

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ..exceptions import PermanentSmsError, TransientSmsError
from .base import BaseSmsBackend

logger = logging.getLogger(__name__)


def classify_error(exc):
    """Return the SmsError to raise for a Twilio or network error."""
    if isinstance(exc, TwilioRestException):
        summary = f"Twilio HTTP {exc.status}, code {exc.code}: {exc.msg}"
        if exc.status == 429 or exc.status >= 500:
            return TransientSmsError(summary)
        return PermanentSmsError(summary)
    if isinstance(exc, requests.RequestException | OSError):
        return TransientSmsError(f"Twilio unreachable: {type(exc).__name__}")
    return PermanentSmsError(f"Twilio error: {type(exc).__name__}")


class SmsBackend(BaseSmsBackend):
    def __init__(
        self,
        *args,
        account_sid=None,
        auth_token=None,
        from_=None,
        http_client=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.account_sid = account_sid or settings.TWILIO_ACCOUNT_SID
        self.auth_token = auth_token or settings.TWILIO_AUTH_TOKEN
        self.from_ = from_ or settings.TWILIO_FROM
        if not (self.account_sid and self.auth_token and self.from_):
            raise ImproperlyConfigured(
                "Set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM."
            )
        if http_client is None:
            dotted = getattr(settings, "TWILIO_HTTP_CLIENT", "")
            http_client = (
                import_string(dotted)()
                if dotted
                else TwilioHttpClient(timeout=settings.TWILIO_TIMEOUT)
            )
        self.http_client = http_client
        self.client = None

    def open(self):
        if self.client is None:
            self.client = Client(
                self.account_sid, self.auth_token, http_client=self.http_client
            )

    def send_messages(self, messages):
        self.open()
        sent = 0
        for message in messages:
            try:
                result = self.client.messages.create(
                    to=message.to, from_=message.from_ or self.from_, body=message.body
                )
            except (TwilioException, requests.RequestException, OSError) as exc:
                error = classify_error(exc)
                logger.warning("SMS to %s not sent: %s", message, error)
                if self.fail_silently:
                    continue
                raise error from None
            message.provider_id = result.sid or ""
            logger.info("SMS to %s accepted by Twilio as %s", message, result.sid)
            sent += 1
        return sent
