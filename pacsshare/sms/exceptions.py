class SmsError(Exception):
    """An SMS could not be sent."""


class TransientSmsError(SmsError):
    """Sending failed for a reason that may pass (rate limit, 5xx, network): retry."""


class PermanentSmsError(SmsError):
    """Sending failed for good (bad number, refused by the provider): do not retry."""
