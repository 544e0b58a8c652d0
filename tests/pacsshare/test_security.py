"""Web hardening: CSP, no caching of patient pages, login throttling, session
timeouts."""

import time

import pytest
from django.urls import reverse

from pacsshare.middleware import SESSION_SEEN_KEY, SESSION_STARTED_KEY
from sharing.models import AuditEvent
from tests.factories import PASSWORD, build_admin_world

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")
OVERVIEW = reverse("studies:overview")
STATUS = reverse("sharing:status_forwarding")
REQUIRED_CSP = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
]


@pytest.fixture
def world():
    return build_admin_world()


def _pages(world):
    return [
        OVERVIEW,
        STATUS,
        reverse("admin:index"),
        reverse("admin:sharing_bucket_changelist"),
        reverse("admin:sharing_bucket_change", args=[world.bucket_b.pk]),
        reverse("admin:sharing_auditevent_changelist"),
        reverse("admin:recipients_department_changelist"),
    ]


def _csp_directives(response):
    return [part.strip() for part in response["Content-Security-Policy"].split(";")]


def test_it_sends_the_content_security_policy_on_every_page(client, world):
    anonymous = client.get(LOGIN)
    client.force_login(world.desk)

    responses = [anonymous] + [client.get(url) for url in _pages(world)]

    for response in responses:
        assert response.status_code == 200, response.request["PATH_INFO"]
        directives = _csp_directives(response)
        for required in REQUIRED_CSP:
            assert required in directives, (response.request["PATH_INFO"], required)
        assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_it_sends_the_policy_on_errors_and_redirects_too(client, world):
    client.force_login(world.plain)

    forbidden = client.get(reverse("admin:index"))
    missing = client.get("/no-such-page/")

    assert forbidden.status_code == 403
    assert "object-src 'none'" in forbidden["Content-Security-Policy"]
    assert missing.status_code == 404
    assert "frame-ancestors 'none'" in missing["Content-Security-Policy"]


def test_it_forbids_caching_pages_seen_by_a_signed_in_user(client, world):
    client.force_login(world.admin_a)

    for url in [OVERVIEW, STATUS, reverse("admin:sharing_bucket_changelist")]:
        response = client.get(url)
        assert "no-store" in response["Cache-Control"], url
        assert "private" in response["Cache-Control"], url


def test_it_keeps_a_views_own_cache_control(rf, world):
    from django.http import HttpResponse

    from pacsshare.middleware import NoStoreMiddleware

    def view(request):
        response = HttpResponse(b"frame")
        response["Cache-Control"] = "private, max-age=3600"
        return response

    request = rf.get("/frame/")
    request.user = world.admin_a

    response = NoStoreMiddleware(view)(request)

    assert response["Cache-Control"] == "private, max-age=3600"


def _login(client, password, *, username="sender-a", ip="198.51.100.20"):
    return client.post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_it_throttles_repeated_failed_logins(client, world):
    failures = [_login(client, f"wrong-{n}") for n in range(5)]

    locked = _login(client, PASSWORD)

    assert [r.status_code for r in failures[:4]] == [200] * 4
    assert locked.status_code == 429
    assert "Try again in 15 minutes" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # The same user from another address is not locked (lock by username + IP).
    elsewhere = _login(client, PASSWORD, ip="198.51.100.99")
    assert elsewhere.status_code == 302


def test_it_audits_each_failed_login_without_the_password(client, world):
    _login(client, "wrong-secret-1")
    _login(client, "wrong-secret-2")

    events = list(AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED))

    assert len(events) == 2
    assert {e.ip_address for e in events} == {"198.51.100.20"}
    assert all(e.details["username"] == "sender-a" for e in events)
    assert "wrong-secret" not in str([e.details for e in events])


def test_it_still_logs_in_with_the_right_password(client, world):
    response = _login(client, PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(world.sender_a.pk)
    assert not AuditEvent.objects.exists()


def test_it_lets_tests_log_in_without_a_request(client, world):
    assert client.login(username="sender-a", password=PASSWORD)
    assert client.get(OVERVIEW).status_code == 200


def _age_session(client, *, idle=0, age=0):
    session = client.session
    now = time.time()
    session[SESSION_STARTED_KEY] = now - age
    session[SESSION_SEEN_KEY] = now - idle
    session.save()


def test_it_ends_an_idle_session(client, world, settings):
    settings.SESSION_IDLE_TIMEOUT = 30 * 60
    client.force_login(world.admin_a)
    assert client.get(STATUS).status_code == 200

    _age_session(client, idle=31 * 60, age=31 * 60)
    response = client.get(STATUS)

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session


def test_it_keeps_an_active_session(client, world):
    client.force_login(world.admin_a)

    _age_session(client, idle=29 * 60, age=11 * 3600)

    assert client.get(STATUS).status_code == 200


def test_it_ends_a_session_after_the_absolute_timeout(client, world, settings):
    settings.SESSION_ABSOLUTE_TIMEOUT = 12 * 3600
    client.force_login(world.admin_a)
    client.get(STATUS)

    _age_session(client, idle=10, age=12 * 3600 + 60)
    response = client.get(STATUS)

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_it_honours_a_configured_idle_timeout(client, world, settings):
    settings.SESSION_IDLE_TIMEOUT = 5 * 60
    client.force_login(world.admin_a)

    _age_session(client, idle=6 * 60, age=6 * 60)

    assert client.get(STATUS).status_code == 302
