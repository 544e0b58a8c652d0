"""The access log in Django admin: visible to its department's admins, read-only
for everyone, the superuser included."""

import pytest
from django.urls import reverse

from sharing.audit.record import audit_record
from sharing.models import AuditEvent
from tests.factories import UserFactory, build_admin_world

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sharing_auditevent_changelist")


@pytest.fixture
def world():
    world = build_admin_world()
    world.event_a = audit_record(
        action=AuditEvent.Action.REVOKED, actor=world.admin_a, bucket=world.bucket_a
    )
    world.event_b = audit_record(
        action=AuditEvent.Action.REVOKED, actor=world.admin_b, bucket=world.bucket_b
    )
    return world


@pytest.fixture
def superuser():
    return UserFactory(username="root", is_superuser=True, is_staff=True)


def test_it_shows_a_department_admin_only_their_departments_events(client, world):
    client.force_login(world.admin_a)

    response = client.get(CHANGELIST)

    assert [e.pk for e in response.context["cl"].result_list] == [world.event_a.pk]


def test_it_offers_no_add_change_or_delete_even_to_the_superuser(
    client, world, superuser
):
    client.force_login(superuser)
    change_url = reverse("admin:sharing_auditevent_change", args=[world.event_a.pk])

    add = client.get(reverse("admin:sharing_auditevent_add"))
    delete = client.post(
        reverse("admin:sharing_auditevent_delete", args=[world.event_a.pk]),
        {"post": "yes"},
    )
    change = client.post(change_url, {"action": "otp_failed", "ip_address": "10.0.0.1"})
    page = client.get(change_url)
    bulk = client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [world.event_a.pk]},
    )

    assert add.status_code == 403
    assert delete.status_code == 403
    assert change.status_code == 403
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert "delete_selected" not in {
        a[0] for a in page.context.get("actions", []) or []
    }
    assert bulk.status_code in (200, 302)
    world.event_a.refresh_from_db()
    assert world.event_a.action == "revoked"
    assert AuditEvent.objects.count() == 2


def test_it_exports_the_selected_events_as_csv(client, world):
    client.force_login(world.admin_a)

    response = client.post(
        CHANGELIST,
        {
            "action": "export_csv",
            "_selected_action": [world.event_a.pk, world.event_b.pk],
        },
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0].startswith("time_utc,action,actor")
    # The other department's event was not in the admin's queryset.
    assert len(lines) == 2
    assert "admin-a" in lines[1]
