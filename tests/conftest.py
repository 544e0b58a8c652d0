"""Shared fixtures: service markers, fast password hashing, isolated file folders."""

import os
import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db import connection

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _reachable(url, default_port):
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname, parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _missing_service(marker_name):
    if marker_name == "postgres":
        if connection.vendor != "postgresql":
            return "DATABASE_URL does not point at PostgreSQL"
        return None
    if marker_name == "redis":
        url = settings.REDIS_URL
        if not url:
            return "REDIS_URL is not set"
        if not _reachable(url, 6379):
            return f"Redis at {url} is unreachable"
        return None
    if marker_name == "dicom_peers":
        from tests.dicom_peers import missing_dicom_peers

        return missing_dicom_peers()
    return None


@pytest.fixture(autouse=True)
def _require_services(request):
    """Skip a test whose service is absent, or fail it when services are required."""
    for name in ("postgres", "redis", "dicom_peers"):
        if request.node.get_closest_marker(name) is None:
            continue
        reason = _missing_service(name)
        if reason is None:
            continue
        if settings.PACSSHARE_REQUIRE_SERVICES:
            pytest.fail(f"{name} is required (PACSSHARE_REQUIRE_SERVICES=1): {reason}")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Hash test passwords quickly: PBKDF2 takes ~2 s per user on a busy CI box."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_files(tmp_path, settings):
    """Keep media, outbox and render cache of each test in its own folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.OUTBOX_DIR = str(tmp_path / "outbox")
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox" / "mail")
    settings.SMS_FILE_PATH = str(tmp_path / "outbox" / "sms")
    settings.RENDER_CACHE_DIR = str(tmp_path / "render-cache")
    # Small frames are cached in memory (per process), not in the folder above.
    from studies import rendering

    rendering._small_images.clear()


@pytest.fixture(autouse=True)
def _celery_in_process(request):
    """Run Celery tasks in-process (after commit) unless the test starts a worker.

    Keeps tests that trigger tasks off the Redis broker even when REDIS_URL is set;
    tests using the ``celery_worker`` fixture (tests/fixtures_services.py) get a
    real worker instead.
    """
    if "celery_worker" in request.fixturenames:
        yield
        return
    from pacsshare.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@pytest.fixture(autouse=True)
def _own_guess_counters(settings):
    """Give each test its own link and code guess counters in the shared cache.

    Every test client comes from 127.0.0.1: without this, the suite's own link
    and code requests would add up to the throttle's limit (sharing/access/).
    """
    import uuid

    settings.RATELIMIT_CACHE_PREFIX = f"rl:{uuid.uuid4().hex}:"


@pytest.fixture(autouse=True)
def _no_server_error():
    """Fail any test during which a request ended in an unhandled exception (a 500).

    The test client raises such an exception in the test already; this also
    catches the requests a live server (the browser stories) answers in a thread.
    """
    from django.core.signals import got_request_exception

    errors = []

    def record(sender, request=None, **kwargs):
        errors.append(getattr(request, "path", "?"))

    got_request_exception.connect(record, dispatch_uid="tests.no_server_error")
    yield
    got_request_exception.disconnect(dispatch_uid="tests.no_server_error")
    assert not errors, f"requests answered 500: {errors}"
