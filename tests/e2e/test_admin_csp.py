"""In Chromium: the overview, Status Forwarding and the admin work under the
Content Security Policy (no violation reported), and unlock works from the page."""

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing.models import Bucket
from tests.e2e.conftest import screenshot
from tests.factories import PASSWORD, build_admin_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _watch_console(page):
    problems = []
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text) if msg.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def _log_in(page, live_server, username):
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]:has-text('Log in')")
    page.wait_for_load_state()


def _csp_violations(problems):
    return [p for p in problems if "Content Security Policy" in p or "CSP" in p]


def test_it_shows_pages_and_admin_without_csp_violations(live_server, page):
    world = build_admin_world()
    problems = _watch_console(page)

    _log_in(page, live_server, "admin-a")
    urls = [
        reverse("studies:overview"),
        reverse("sharing:status_forwarding"),
        reverse("admin:index"),
        reverse("admin:sharing_bucket_changelist"),
        reverse("admin:sharing_bucket_change", args=[world.bucket_a.pk]),
        reverse("admin:recipients_department_change", args=[world.dept_a.pk]),
        reverse("admin:sharing_label_add"),
        reverse("admin:sharing_auditevent_changelist"),
    ]
    for url in urls:
        response = page.goto(live_server.url + url)
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
    # Admin JavaScript runs: the "select all" checkbox ticks every row.
    page.goto(live_server.url + reverse("admin:sharing_bucket_changelist"))
    page.check("#action-toggle")
    assert page.is_checked("input.action-select")

    assert _csp_violations(problems) == []


def test_it_unlocks_from_status_forwarding_in_the_browser(live_server, page):
    world = build_admin_world()
    problems = _watch_console(page)
    _log_in(page, live_server, "admin-a")

    page.goto(live_server.url + reverse("sharing:status_forwarding"))
    screenshot(page, "status-forwarding-locked")
    page.click(f"#bucket-{world.bucket_a.pk} button:has-text('Unlock')")
    page.wait_for_load_state()

    assert "Bucket unlocked for" in page.inner_text(".messages")
    bucket = Bucket.objects.get(pk=world.bucket_a.pk)
    assert (bucket.locked_at, bucket.failed_otp_attempts) == (None, 0)
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(f"#bucket-{world.bucket_a.pk} button:has-text('Revoke')")
    page.wait_for_load_state()
    assert Bucket.objects.get(pk=world.bucket_a.pk).revoked_at <= timezone.now()
    screenshot(page, "status-forwarding-revoked")
    page.goto(live_server.url + reverse("admin:sharing_bucket_changelist"))
    screenshot(page, "admin-bucket-changelist")
    assert _csp_violations(problems) == []
