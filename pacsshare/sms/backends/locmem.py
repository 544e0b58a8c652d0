"""Keep each SMS in ``pacsshare.sms.outbox``: for tests."""

import itertools

from .base import BaseSmsBackend

_ids = itertools.count(1)


class SmsBackend(BaseSmsBackend):
    def send_messages(self, messages):
        from pacsshare import sms

        for message in messages:
            message.provider_id = f"locmem-{next(_ids)}"
            sms.outbox.append(message)
        return len(messages)
