"""Django admin: notifications with retry, labels and department policy, each
limited to the departments the user administers."""

import pytest
from django.urls import reverse

from recipients.models import Department
from sharing.models import Label, Notification
from tests.factories import build_admin_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_admin_world()


def _notification(bucket, status):
    return Notification.objects.create(
        channel=Notification.Channel.EMAIL,
        kind=Notification.Kind.SHARE,
        bucket=bucket,
        to_address=f"{bucket.recipient_user.username}@example.org",
        language="en",
        status=status,
        error="550 mailbox unavailable" if status == "failed" else "",
    )


def test_it_retries_failed_notifications_of_the_admins_department(client, world):
    failed_a = _notification(world.bucket_a, Notification.Status.FAILED)
    failed_b = _notification(world.bucket_b, Notification.Status.FAILED)
    client.force_login(world.admin_a)

    response = client.post(
        reverse("admin:sharing_notification_changelist"),
        {"action": "retry_selected", "_selected_action": [failed_a.pk, failed_b.pk]},
        follow=True,
    )

    failed_a.refresh_from_db()
    failed_b.refresh_from_db()
    # Back to pending; the task is queued when the transaction commits.
    assert failed_a.status == Notification.Status.PENDING
    assert failed_b.status == Notification.Status.FAILED
    assert failed_b.attempts == 0
    assert "1 message queued again." in [str(m) for m in response.context["messages"]]


def test_it_lists_notifications_with_their_status(client, world):
    _notification(world.bucket_a, Notification.Status.FAILED)
    _notification(world.bucket_b, Notification.Status.SENT)
    client.force_login(world.admin_a)

    response = client.get(
        reverse("admin:sharing_notification_changelist"), {"status": "failed"}
    )

    rows = list(response.context["cl"].result_list)
    assert [n.bucket_id for n in rows] == [world.bucket_a.pk]


def test_it_lets_an_admin_add_a_label_only_to_their_department(client, world):
    client.force_login(world.admin_a)
    add_url = reverse("admin:sharing_label_add")

    page = client.get(add_url)
    refused = client.post(
        add_url, {"department": world.dept_b.pk, "name": "Urgent", "color": "#aa0000"}
    )
    created = client.post(
        add_url, {"department": world.dept_a.pk, "name": "Urgent", "color": "#aa0000"}
    )

    assert "Radiology Beta" not in page.content.decode()
    assert refused.status_code == 200  # the form says the choice is not valid
    assert created.status_code == 302
    assert list(Label.objects.values_list("department__code", "name")) == [
        ("alpha", "Urgent")
    ]


def test_it_hides_another_departments_labels(client, world):
    label_b = Label.objects.create(department=world.dept_b, name="Oncology")
    client.force_login(world.admin_a)

    listing = client.get(reverse("admin:sharing_label_changelist"))
    change = client.post(
        reverse("admin:sharing_label_change", args=[label_b.pk]),
        {"department": world.dept_a.pk, "name": "Mine now", "color": "#000000"},
    )

    assert list(listing.context["cl"].result_list) == []
    assert change.status_code == 302
    label_b.refresh_from_db()
    assert label_b.name == "Oncology"


def test_it_lets_an_admin_edit_their_departments_policy_only(client, world):
    client.force_login(world.admin_a)
    url_a = reverse("admin:recipients_department_change", args=[world.dept_a.pk])
    url_b = reverse("admin:recipients_department_change", args=[world.dept_b.pk])
    policy = {
        "default_validity_days": "14",
        "max_validity_days": "90",
        "allow_unlimited": "",
        "max_recipients": "5",
        "name": "Renamed",
    }

    own = client.post(url_a, policy)
    other = client.post(url_b, policy)

    assert own.status_code == 302
    assert other.status_code == 302  # to the admin index: "doesn't exist"
    world.dept_a.refresh_from_db()
    world.dept_b.refresh_from_db()
    assert (
        world.dept_a.default_validity_days,
        world.dept_a.max_validity_days,
        world.dept_a.allow_unlimited,
        world.dept_a.max_recipients,
    ) == (14, 90, False, 5)
    assert world.dept_a.name == "Radiology Alpha"  # not a policy field
    assert world.dept_b.default_validity_days is None
    assert world.dept_b.max_recipients == 3


def test_it_lists_only_the_admins_departments(client, world):
    client.force_login(world.admin_a)

    response = client.get(reverse("admin:recipients_department_changelist"))

    assert list(response.context["cl"].result_list) == [
        Department.objects.get(code="alpha")
    ]


def test_it_lets_the_service_desk_edit_any_department(client, world):
    client.force_login(world.desk)

    response = client.post(
        reverse("admin:recipients_department_change", args=[world.dept_b.pk]),
        {
            "name": "Radiology Beta",
            "code": "beta",
            "time_zone": "Europe/Brussels",
            "default_validity_days": "7",
            "max_recipients": "3",
            "is_public": "on",
            "allow_unlimited": "on",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    world.dept_b.refresh_from_db()
    assert world.dept_b.default_validity_days == 7
