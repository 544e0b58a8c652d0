"""Real services for tests and benchmarks: an SMTP server and a Celery worker.

Use the pytest fixtures by importing them into a conftest.py::

    from tests.fixtures_services import celery_worker, smtp_server, sms_outbox  # noqa

``smtp_server`` starts an aiosmtpd server on a free port and points Django's SMTP
backend at it; ``server.messages`` holds what arrived, ``server.fail_next("421 ...")``
makes the next DATA commands fail. ``celery_worker`` starts a real Celery worker
(solo pool, in a thread) on the Redis broker of ``REDIS_URL``; mark such tests
``@pytest.mark.redis`` and ``@pytest.mark.django_db(transaction=True)``. Tests
without it run tasks in-process (see tests/conftest.py). The context managers
``running_smtp_server()`` and ``running_celery_worker()`` do the same outside pytest.
"""

import collections
import contextlib
import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from django.db import connections


def free_port(host="127.0.0.1"):
    """Return a TCP port nobody listens on right now (aiosmtpd refuses port 0)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list
    message: email.message.EmailMessage

    @property
    def subject(self):
        return str(self.message["Subject"])

    @property
    def text(self):
        return self.message.get_body(preferencelist=("plain",)).get_content()

    @property
    def html(self):
        return self.message.get_body(preferencelist=("html",)).get_content()


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that keeps each message, or fails with queued replies."""

    messages: list = field(default_factory=list)
    replies: collections.deque = field(default_factory=collections.deque)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.replies:
                self.refused += 1
                return self.replies.popleft()
            message = email.message_from_bytes(
                envelope.original_content or envelope.content,
                policy=email.policy.default,
            )
            self.messages.append(
                ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message)
            )
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler

    @property
    def messages(self):
        with self.handler.lock:
            return list(self.handler.messages)

    def fail_next(self, *replies):
        """Answer the next DATA commands with these replies, e.g. "421 Try later"."""
        with self.handler.lock:
            self.handler.replies.extend(replies)


@contextlib.contextmanager
def running_smtp_server(host="127.0.0.1"):
    """Run an aiosmtpd server on a free port; yield an ``SmtpServer``."""
    handler = RecordingHandler()
    port = free_port(host)
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    try:
        yield SmtpServer(host, port, handler)
    finally:
        controller.stop()


def smtp_settings(server):
    """Return the Django settings that send mail to ``server``."""
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": server.host,
        "EMAIL_PORT": server.port,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 10,
    }


def _close_db_connections(**kwargs):
    # The worker thread has its own connections; close them after each task so
    # the test database can be flushed and dropped.
    connections.close_all()


@contextlib.contextmanager
def running_celery_worker(**worker_kwargs):
    """Run a real Celery worker (solo pool, in a thread) on the configured broker."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from pacsshare.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False
    # Messages left by an earlier run would only slow this one down.
    app.control.purge()
    task_postrun.connect(_close_db_connections, weak=False)
    options = {"pool": "solo", "perform_ping_check": False, "shutdown_timeout": 30}
    options.update(worker_kwargs)
    try:
        with start_worker(app, **options) as worker:
            yield worker
    finally:
        task_postrun.disconnect(_close_db_connections)
        app.conf.task_always_eager = saved


def wait_for(predicate, timeout=20.0, interval=0.05):
    """Poll ``predicate`` until it returns something true; return it or fail."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) that Django's SMTP backend sends to."""
    with running_smtp_server() as server:
        for name, value in smtp_settings(server).items():
            setattr(settings, name, value)
        yield server


@pytest.fixture
def celery_worker(settings):
    """A real Celery worker on the Redis broker of REDIS_URL (mark tests redis)."""
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    with running_celery_worker() as worker:
        yield worker


@pytest.fixture
def sms_outbox(settings):
    """Send SMS to the in-memory outbox; yield it (a list of SmsMessage)."""
    from pacsshare import sms

    settings.SMS_BACKEND = "pacsshare.sms.backends.locmem.SmsBackend"
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


def _make_recording_twilio_client():
    """Build a twilio.http.HttpClient that records requests and answers from a queue.

    ``requests`` and ``statuses`` live on the class, so a backend built from
    ``settings.TWILIO_HTTP_CLIENT`` (even in a worker thread) shares them.
    """
    import json
    import logging

    from twilio.http import HttpClient
    from twilio.http.response import Response

    class _Recording(HttpClient):
        requests = []
        statuses = collections.deque()
        _lock = threading.Lock()

        def __init__(self):
            super().__init__(logging.getLogger("tests.twilio"), False, None)

        def request(
            self,
            method,
            uri,
            params=None,
            data=None,
            headers=None,
            auth=None,
            timeout=None,
            allow_redirects=False,
        ):
            with self._lock:
                self.requests.append(
                    {
                        "method": method,
                        "uri": uri,
                        "data": dict(data or {}),
                        "auth": auth,
                    }
                )
                status = self.statuses.popleft() if self.statuses else 201
                number = len(self.requests)
            if status == 201:
                body = {
                    "sid": f"SM{number:032d}",
                    "status": "queued",
                    "to": (data or {}).get("To"),
                    "from": (data or {}).get("From"),
                }
            else:
                body = {"code": 21211, "message": f"HTTP {status}", "status": status}
            return Response(status, json.dumps(body))

    return _Recording


RecordingTwilioHttpClient = _make_recording_twilio_client()
TWILIO_TEST_SID = "AC" + "0123456789abcdef" * 2


@pytest.fixture
def twilio_http(settings):
    """Send SMS through the real Twilio backend, to a recording HTTP client."""
    settings.SMS_BACKEND = "pacsshare.sms.backends.twilio.SmsBackend"
    settings.TWILIO_ACCOUNT_SID = TWILIO_TEST_SID
    settings.TWILIO_AUTH_TOKEN = "test-auth-token"
    settings.TWILIO_FROM = "+3225550100"
    settings.TWILIO_HTTP_CLIENT = "tests.fixtures_services.RecordingTwilioHttpClient"
    RecordingTwilioHttpClient.requests.clear()
    RecordingTwilioHttpClient.statuses.clear()
    yield RecordingTwilioHttpClient
    RecordingTwilioHttpClient.requests.clear()
    RecordingTwilioHttpClient.statuses.clear()
