"""Write each SMS to its own file under ``settings.SMS_FILE_PATH`` (the outbox)."""

import datetime
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import BaseSmsBackend


class SmsBackend(BaseSmsBackend):
    def __init__(self, *args, file_path=None, **kwargs):
        super().__init__(*args, **kwargs)
        path = file_path or getattr(settings, "SMS_FILE_PATH", None)
        if not path:
            raise ImproperlyConfigured("Set SMS_FILE_PATH to use the file SMS backend.")
        self.file_path = Path(path)

    def send_messages(self, messages):
        self.file_path.mkdir(parents=True, exist_ok=True)
        for message in messages:
            now = datetime.datetime.now(datetime.UTC)
            name = f"{now:%Y%m%d-%H%M%S-%f}-{secrets.token_hex(4)}.sms"
            message.provider_id = f"file-{name}"
            content = (
                f"To: {message.to}\n"
                f"From: {message.from_}\n"
                f"Date: {now.isoformat(timespec='seconds')}\n\n"
                f"{message.body}\n"
            )
            path = self.file_path / name
            # Write then rename, so the outbox page never reads half a message.
            tmp = path.with_suffix(".tmp")
            tmp.write_text(content, encoding="utf-8")
            os.replace(tmp, path)
        return len(messages)
