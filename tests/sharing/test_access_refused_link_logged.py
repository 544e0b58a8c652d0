"""A link opened by another signed-in user reaches the sending department's
access log (issue 14, item 12)."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing.models import AuditEvent
from tests.factories import UserFactory, make_bucket

pytestmark = pytest.mark.django_db


@pytest.fixture
def bucket():
    return make_bucket(require_otp=False)


def _admin(bucket):
    return bucket.share.source_department.memberships.get(is_admin=True).user


def test_someone_elses_link_is_on_the_senders_access_log_and_csv(client, bucket):
    client.force_login(UserFactory(username="intruder"))
    link = client.get(reverse("sharing:bucket_link", args=[bucket.link_token]))
    refused = client.get(link["Location"])
    assert refused.status_code == 404

    admin = _admin(bucket)
    client.force_login(admin)
    changelist = client.get(reverse("admin:sharing_auditevent_changelist"))
    today = timezone.now().date()
    export = client.get(
        reverse("sharing:audit_export"),
        {
            "department": bucket.share.source_department.pk,
            "date_from": today,
            "date_to": today,
        },
    )

    shown = [e for e in changelist.context["cl"].result_list]
    assert [(e.action, e.actor.username) for e in shown] == [
        (AuditEvent.Action.ACCESS_REFUSED, "intruder")
    ]
    assert shown[0].bucket_id == bucket.pk
    csv_lines = b"".join(export.streaming_content).decode().strip().splitlines()
    assert len(csv_lines) == 2
    assert "access_refused" in csv_lines[1]
    assert "intruder" in csv_lines[1]


def test_the_visitor_sees_the_same_page_as_for_an_id_that_does_not_exist(
    client, bucket
):
    client.force_login(UserFactory(username="intruder"))

    someone_elses = client.get(reverse("sharing:received", args=[bucket.pk]))
    missing = client.get(reverse("sharing:received", args=[bucket.pk + 1000]))

    assert someone_elses.status_code == missing.status_code == 404
    assert _without_csrf(someone_elses) == _without_csrf(missing)
    assert bucket.share.source_department.name not in someone_elses.content.decode()


def _without_csrf(response):
    # The CSRF token and the language form's "next" (this page's own path) differ.
    html = re.sub(r'value="[A-Za-z0-9]{64}"', "", response.content.decode())
    return re.sub(r'name="next" value="/received/[0-9]+/"', "", html)
