"""A database connection dropped between requests costs no request (gunicorn, PG)."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
# A link-shaped token: the page looks the bucket up (the request needs the DB)
# and, followed, ends on the "link not valid" page (404).
URL_PATH = "/b/" + "A" * 43 + "/"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def gunicorn_url(tmp_path):
    db = settings.DATABASES["default"]
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CONN_MAX_AGE": "600",
        "REDIS_URL": "",
        "DEBUG": "1",
        "LOG_LEVEL": "ERROR",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "pacsshare.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("gunicorn did not start")
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(10)


def _terminate_other_backends():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_it_serves_the_request_after_the_connection_was_terminated(gunicorn_url):
    assert _get(gunicorn_url + URL_PATH) == 404  # the worker now holds a connection

    assert _terminate_other_backends() >= 1

    assert _get(gunicorn_url + URL_PATH) == 404
    assert _get(gunicorn_url + URL_PATH) == 404
