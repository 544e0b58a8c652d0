"""Link and SMS-code guessing is throttled per address and per session (429)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from sharing.models import AuditEvent, Bucket
from tests.factories import UserFactory, make_bucket

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_900_000_020.0  # inside one minute window: the counts do not split


@pytest.fixture(autouse=True)
def _one_window(monkeypatch, settings):
    import django_ratelimit.core

    import sharing.access.throttle

    monkeypatch.setattr(django_ratelimit.core.time, "time", lambda: NOW)
    monkeypatch.setattr(sharing.access.throttle.time, "time", lambda: NOW)
    settings.ACCESS_LINK_RATE = "5/m"
    settings.ACCESS_CODE_RATE = "3/m"


def guess(n):
    return reverse("sharing:bucket_link", args=[f"{n:043d}"])


def test_link_guesses_from_one_address_get_too_many_attempts():
    bucket = make_bucket(require_otp=False)
    statuses = []
    for n in range(5):
        statuses.append(Client(REMOTE_ADDR="203.0.113.9").get(guess(n)).status_code)

    refused = Client(REMOTE_ADDR="203.0.113.9").get(guess(99))
    right_link = Client(REMOTE_ADDR="203.0.113.9").get(
        reverse("sharing:bucket_link", args=[bucket.link_token])
    )
    other_address = Client(REMOTE_ADDR="203.0.113.10").get(guess(100))

    assert statuses == [302] * 5
    assert refused.status_code == 429
    assert "Too many attempts" in refused.content.decode()
    assert "Try again in 1 minute" in refused.content.decode()
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert right_link.status_code == 429  # a lucky guess is refused too
    assert other_address.status_code == 302


def test_link_guesses_from_one_session_are_limited_whatever_the_address(client):
    client.force_login(UserFactory())
    statuses = [
        client.get(guess(n), REMOTE_ADDR=f"198.51.100.{n}").status_code
        for n in range(7)
    ]

    assert statuses == [302] * 5 + [429] * 2


def test_a_guessing_run_is_audited_once_a_window_with_a_count():
    for n in range(60):
        Client(REMOTE_ADDR="203.0.113.9").get(guess(n))

    events = AuditEvent.objects.filter(action="access_refused")
    assert events.count() == 2
    counts = {e.details["refusal"]: e.details["count"] for e in events}
    assert counts == {"invalid_link": 5, "too_many_attempts": 55}
    assert {e.ip_address for e in events} == {"203.0.113.9"}


def test_code_posts_are_limited_and_count_no_wrong_code_beyond(
    client, django_capture_on_commit_callbacks
):
    bucket = make_bucket(recipient=UserFactory(mobile="+32475123456"))
    client.force_login(bucket.recipient_user)
    url = reverse("sharing:bucket_code", kwargs={"bucket_id": bucket.pk})
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(url).status_code == 200  # sends the code

    statuses = [client.post(url, {"code": "000000"}).status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 429, 429]
    page = client.post(url, {"code": "000000"})
    assert "Too many attempts" in page.content.decode()
    assert Bucket.objects.get(pk=bucket.pk).failed_otp_attempts == 3
    assert (
        AuditEvent.objects.filter(
            action="access_refused", details__refusal="too_many_attempts"
        ).count()
        == 1
    )


WORKER = """
import django, os, sys, time
django.setup()
import django_ratelimit.core, sharing.access.throttle
django_ratelimit.core.time.time = lambda: float(sys.argv[1])
sharing.access.throttle.time.time = lambda: float(sys.argv[1])
from django.conf import settings
settings.RATELIMIT_CACHE_PREFIX = sys.argv[2]
settings.ACCESS_LINK_RATE = "5/m"
from django.contrib.sessions.backends.cache import SessionStore
from django.test import RequestFactory
from sharing.access.throttle import Scope, attempt_count
results = []
for _ in range(5):
    request = RequestFactory().get("/b/x/", REMOTE_ADDR="203.0.113.77")
    request.session = SessionStore()
    results.append(attempt_count(request, scope=Scope.LINK) is None)
print(results)
"""


@pytest.mark.redis
def test_the_limit_holds_across_workers_on_redis(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
        }
    }
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pacsshare.settings"}
    other_worker = subprocess.run(
        [sys.executable, "-c", WORKER, str(NOW), settings.RATELIMIT_CACHE_PREFIX],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(other_worker.stdout.strip().lower()) == [True] * 5

    response = Client(REMOTE_ADDR="203.0.113.77").get(guess(1))

    assert response.status_code == 429
