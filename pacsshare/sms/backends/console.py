"""Print each SMS to a stream (stdout by default): for development only."""

import sys
import threading

from .base import BaseSmsBackend


class SmsBackend(BaseSmsBackend):
    def __init__(self, *args, stream=None, **kwargs):
        self.stream = stream or sys.stdout
        self._lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def write_message(self, message):
        self.stream.write(
            f"To: {message.to}\nFrom: {message.from_}\n\n{message.body}\n"
        )
        self.stream.write("-" * 79 + "\n")

    def send_messages(self, messages):
        with self._lock:
            for message in messages:
                self.write_message(message)
            self.stream.flush()
        return len(messages)
