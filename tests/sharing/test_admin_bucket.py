"""Django admin for department admins and the service desk: buckets, scoped."""

import pytest
from django.contrib import admin
from django.urls import reverse

from sharing.models import AuditEvent, BucketUnlock
from tests.factories import PASSWORD, build_admin_world

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sharing_bucket_changelist")


@pytest.fixture
def world():
    return build_admin_world()


def _change_url(bucket):
    return reverse("admin:sharing_bucket_change", args=[bucket.pk])


def _action(client, action, *buckets):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [b.pk for b in buckets]},
        follow=True,
    )


def test_it_lists_only_the_admins_own_department(client, world):
    client.force_login(world.admin_a)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    shown = {b.pk for b in response.context["cl"].result_list}
    assert shown == {world.bucket_a.pk}


def test_it_lists_every_department_for_the_service_desk(client, world):
    client.force_login(world.desk)

    response = client.get(CHANGELIST)

    shown = {b.pk for b in response.context["cl"].result_list}
    assert shown == {world.bucket_a.pk, world.bucket_b.pk}


def test_it_shows_no_change_page_of_another_department(client, world):
    client.force_login(world.admin_a)

    own = client.get(_change_url(world.bucket_a))
    other = client.get(_change_url(world.bucket_b), follow=True)

    assert own.status_code == 200
    assert str(world.bucket_b.recipient) not in other.content.decode()
    assert b"doesn\xe2\x80\x99t exist" in other.content
    assert other.redirect_chain[-1][0] == reverse("admin:index")


def test_it_shows_the_change_page_of_any_department_to_the_service_desk(client, world):
    client.force_login(world.desk)

    assert client.get(_change_url(world.bucket_b)).status_code == 200


def test_it_unlocks_with_the_action_and_reports_it(client, world):
    client.force_login(world.admin_a)

    response = _action(client, "unlock_selected", world.bucket_a)

    world.bucket_a.refresh_from_db()
    assert world.bucket_a.locked_at is None
    assert world.bucket_a.failed_otp_attempts == 0
    assert "1 bucket unlocked." in [str(m) for m in response.context["messages"]]
    assert AuditEvent.objects.filter(action="bucket_unlocked").count() == 1
    assert BucketUnlock.objects.get().unlocked_by == world.admin_a


def test_it_does_not_unlock_another_departments_bucket_with_the_action(client, world):
    client.force_login(world.admin_a)

    _action(client, "unlock_selected", world.bucket_b)

    world.bucket_b.refresh_from_db()
    assert world.bucket_b.locked_at is not None
    assert world.bucket_b.failed_otp_attempts == 5
    assert not AuditEvent.objects.exists()


def test_it_does_not_revoke_another_departments_bucket_with_the_action(client, world):
    client.force_login(world.admin_a)

    _action(client, "revoke_selected", world.bucket_a, world.bucket_b)

    world.bucket_a.refresh_from_db()
    world.bucket_b.refresh_from_db()
    assert world.bucket_a.revoked_at is not None
    assert world.bucket_b.revoked_at is None
    assert list(AuditEvent.objects.values_list("action", "bucket")) == [
        ("revoked", world.bucket_a.pk)
    ]


def test_it_lets_the_service_desk_unlock_and_revoke_any_department(client, world):
    client.force_login(world.desk)

    _action(client, "unlock_selected", world.bucket_a, world.bucket_b)
    response = _action(client, "revoke_selected", world.bucket_b)

    world.bucket_a.refresh_from_db()
    world.bucket_b.refresh_from_db()
    assert world.bucket_a.locked_at is None and world.bucket_b.locked_at is None
    assert world.bucket_b.revoked_by == world.desk
    assert "1 bucket revoked." in [str(m) for m in response.context["messages"]]
    assert AuditEvent.objects.count() == 3


def test_it_reports_buckets_that_were_not_locked(client, world):
    client.force_login(world.admin_a)
    _action(client, "unlock_selected", world.bucket_a)

    response = _action(client, "unlock_selected", world.bucket_a)

    messages = [str(m) for m in response.context["messages"]]
    assert "1 bucket was not locked and was left as it was." in messages
    assert AuditEvent.objects.count() == 1


def test_it_filters_by_locked_and_searches_by_recipient(client, world):
    client.force_login(world.desk)
    world.bucket_b.locked_at = None
    world.bucket_b.save()

    locked = client.get(CHANGELIST, {"locked": "yes"})
    found = client.get(CHANGELIST, {"q": world.bucket_b.recipient_user.last_name})

    assert [b.pk for b in locked.context["cl"].result_list] == [world.bucket_a.pk]
    assert [b.pk for b in found.context["cl"].result_list] == [world.bucket_b.pk]


def test_it_offers_only_administered_departments_in_the_filter(client, world):
    client.force_login(world.admin_a)

    response = client.get(CHANGELIST)

    content = response.content.decode()
    assert "Radiology Alpha" in content
    assert "Radiology Beta" not in content


def _every_admin_url(world):
    urls = [
        reverse("admin:index"),
        reverse("admin:login"),
        reverse("admin:password_change"),
        reverse("admin:jsi18n"),
        reverse("admin:autocomplete"),
        "/admin/no-such-page/",
    ]
    apps = set()
    for model, _model_admin in admin.site._registry.items():
        opts = model._meta
        apps.add(opts.app_label)
        name = f"admin:{opts.app_label}_{opts.model_name}"
        urls.append(reverse(f"{name}_changelist"))
        urls.append(reverse(f"{name}_add"))
        urls.append(reverse(f"{name}_change", args=[1]))
        urls.append(reverse(f"{name}_history", args=[1]))
        urls.append(reverse(f"{name}_delete", args=[1]))
    urls += [reverse("admin:app_list", args=[app]) for app in sorted(apps)]
    urls.append(_change_url(world.bucket_a))
    return urls


def test_it_answers_403_to_a_plain_user_on_every_admin_url(client, world):
    client.force_login(world.plain)

    statuses = {url: client.get(url).status_code for url in _every_admin_url(world)}

    assert {url: s for url, s in statuses.items() if s != 403} == {}


def test_it_refuses_a_plain_users_admin_action(client, world):
    client.force_login(world.plain)

    response = client.post(
        CHANGELIST,
        {"action": "unlock_selected", "_selected_action": [world.bucket_a.pk]},
    )

    assert response.status_code == 403
    world.bucket_a.refresh_from_db()
    assert world.bucket_a.locked_at is not None


def test_it_sends_an_anonymous_visitor_to_the_admin_login(client, world):
    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_it_lets_a_department_admin_log_in_to_the_admin(client, world):
    response = client.post(
        reverse("admin:login"),
        {"username": "admin-a", "password": PASSWORD, "next": CHANGELIST},
        REMOTE_ADDR="198.51.100.4",
    )

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
