"""Status Forwarding: the sending department's outgoing buckets, their status,
filters, and the Unlock / Revoke buttons."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from sharing.models import AuditEvent, BucketOpening, Notification
from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    ShareFactory,
    StudyFactory,
    UserFactory,
    build_admin_world,
    locked_bucket,
)

pytestmark = pytest.mark.django_db

PAGE = reverse("sharing:status_forwarding")


@pytest.fixture
def world():
    return build_admin_world()


def _rows(response):
    return {row["bucket"].pk: row for row in response.context["rows"]}


def _unlock(client, bucket):
    return client.post(reverse("sharing:status_unlock", args=[bucket.pk]))


def _revoke(client, bucket):
    return client.post(reverse("sharing:status_revoke", args=[bucket.pk]))


def test_it_shows_the_departments_outgoing_buckets_with_their_details(client, world):
    client.force_login(world.admin_a)

    response = client.get(PAGE)

    assert set(_rows(response)) == {world.bucket_a.pk}
    content = response.content.decode()
    study = world.bucket_a.share.studies.get()
    assert str(world.bucket_a.recipient_user) in content
    assert study.patient.family_name in content
    assert study.description in content
    assert str(world.sender_a) in content
    assert "Locked" in content
    assert "5 wrong codes" in content
    assert "Unlimited" in content  # valid till


def test_it_shows_nothing_of_another_department(client, world):
    client.force_login(world.admin_a)

    response = client.get(PAGE, {"q": world.bucket_b.recipient_user.last_name})

    assert _rows(response) == {}
    content = response.content.decode()
    assert str(world.bucket_b.recipient_user) not in content
    assert str(world.sender_b) not in content  # not even in the sender filter
    assert "Radiology Beta" not in content


def test_it_shows_every_department_to_the_service_desk(client, world):
    client.force_login(world.desk)

    response = client.get(PAGE)

    assert set(_rows(response)) == {world.bucket_a.pk, world.bucket_b.pk}
    assert all(row["can_unlock"] for row in response.context["rows"])


def test_it_shows_a_plain_member_only_their_own_shares_without_buttons(client, world):
    own = locked_bucket(department=world.dept_a, sender=world.plain)
    client.force_login(world.plain)

    response = client.get(PAGE)

    rows = _rows(response)
    # A colleague's share (bucket_a, sent by sender_a) is not theirs to watch.
    assert set(rows) == {own.pk}
    assert (rows[own.pk]["can_unlock"], rows[own.pk]["can_revoke"]) == (False, True)
    assert b"status_unlock" not in response.content
    assert reverse("sharing:status_unlock", args=[own.pk]).encode() not in (
        response.content
    )


def test_it_unlocks_from_the_page_for_an_admin(client, world):
    client.force_login(world.admin_a)

    response = _unlock(client, world.bucket_a)

    assert response.status_code == 302
    world.bucket_a.refresh_from_db()
    assert (world.bucket_a.locked_at, world.bucket_a.failed_otp_attempts) == (None, 0)
    assert AuditEvent.objects.filter(action="bucket_unlocked").count() == 1
    page = client.get(response["Location"])
    assert "Bucket unlocked for" in page.content.decode()
    assert _rows(page)[world.bucket_a.pk]["status"] == "not_opened"


def test_it_refuses_unlock_and_revoke_of_another_department(client, world):
    client.force_login(world.admin_a)

    unlock = _unlock(client, world.bucket_b)
    revoke = _revoke(client, world.bucket_b)

    assert (unlock.status_code, revoke.status_code) == (404, 404)
    world.bucket_b.refresh_from_db()
    assert world.bucket_b.locked_at is not None
    assert world.bucket_b.revoked_at is None
    assert not AuditEvent.objects.filter(action__in=["bucket_unlocked", "revoked"])


def test_it_refuses_unlock_to_the_sender_but_lets_them_revoke_their_own(client, world):
    client.force_login(world.sender_a)

    unlock = _unlock(client, world.bucket_a)
    revoke = _revoke(client, world.bucket_a)

    assert unlock.status_code == 403
    assert revoke.status_code == 302
    world.bucket_a.refresh_from_db()
    assert world.bucket_a.revoked_by == world.sender_a
    assert AuditEvent.objects.filter(action="revoked").count() == 1


def test_it_refuses_a_revoke_by_a_colleague_who_is_no_admin(client, world):
    client.force_login(world.plain)

    response = _revoke(client, world.bucket_a)

    # A colleague's share is not even visible to a plain member.
    assert response.status_code == 404
    world.bucket_a.refresh_from_db()
    assert world.bucket_a.revoked_at is None


def test_it_lets_the_service_desk_unlock_and_revoke_any_department(client, world):
    client.force_login(world.desk)

    _unlock(client, world.bucket_b)
    _revoke(client, world.bucket_b)

    world.bucket_b.refresh_from_db()
    assert world.bucket_b.locked_at is None
    assert world.bucket_b.revoked_by == world.desk
    assert AuditEvent.objects.count() == 2


def test_it_refuses_unlock_and_revoke_by_get(client, world):
    client.force_login(world.admin_a)

    response = client.get(reverse("sharing:status_revoke", args=[world.bucket_a.pk]))

    assert response.status_code == 405
    world.bucket_a.refresh_from_db()
    assert world.bucket_a.revoked_at is None


def test_it_shows_each_status(client, world):
    dept, sender = world.dept_a, world.sender_a
    opened = locked_bucket(department=dept, sender=sender, failed=0)
    BucketOpening.objects.create(bucket=opened, user=opened.recipient_user)
    not_opened = locked_bucket(department=dept, sender=sender, failed=2)
    expired = locked_bucket(department=dept, sender=sender, failed=0)
    expired.share.valid_until = timezone.localdate() - datetime.timedelta(days=2)
    expired.share.save()
    revoked = locked_bucket(department=dept, sender=sender, failed=0)
    revoked.revoked_at = timezone.now()
    revoked.save()
    client.force_login(world.admin_a)

    rows = _rows(client.get(PAGE))

    assert {pk: row["status"] for pk, row in rows.items()} == {
        world.bucket_a.pk: "locked",
        opened.pk: "opened",
        not_opened.pk: "not_opened",
        expired.pk: "expired",
        revoked.pk: "revoked",
    }
    for status, bucket in [
        ("locked", world.bucket_a),
        ("opened", opened),
        ("not_opened", not_opened),
        ("expired", expired),
        ("revoked", revoked),
    ]:
        filtered = _rows(client.get(PAGE, {"status": status}))
        assert set(filtered) == {bucket.pk}, status


def test_it_shows_and_filters_the_mail_status(client, world):
    for status in ("pending", "failed"):
        Notification.objects.create(
            channel="email",
            kind="share",
            bucket=world.bucket_a,
            to_address="r@example.org",
            language="en",
            status=status,
        )
    client.force_login(world.admin_a)

    response = client.get(PAGE)
    failed = _rows(client.get(PAGE, {"status": "mail_failed"}))
    sent = _rows(client.get(PAGE, {"status": "mail_sent"}))

    # The latest share mail holds: it failed.
    assert response.context["rows"][0]["bucket"].mail_status == "failed"
    assert set(failed) == {world.bucket_a.pk}
    assert sent == {}


def test_it_filters_by_sender_and_date_and_searches_patients(client, world):
    other_sender = world.admin_a
    mine = locked_bucket(department=world.dept_a, sender=other_sender, failed=0)
    old = locked_bucket(department=world.dept_a, sender=other_sender, failed=0)
    old.share.created_at = timezone.now() - datetime.timedelta(days=40)
    old.share.save()
    patient = world.bucket_a.share.studies.get().patient
    client.force_login(world.admin_a)

    # "Shared by" takes a name (a department's senders run into the thousands).
    by_sender = _rows(client.get(PAGE, {"sender": other_sender.username.upper()}))
    recent = _rows(
        client.get(
            PAGE,
            {
                "sender": other_sender.username,
                "shared_from": (
                    timezone.localdate() - datetime.timedelta(days=7)
                ).strftime("%d/%m/%Y"),
            },
        )
    )
    by_patient = _rows(client.get(PAGE, {"q": patient.family_name.lower()}))

    assert set(by_sender) == {mine.pk, old.pk}
    assert set(recent) == {mine.pk}
    assert set(by_patient) == {world.bucket_a.pk}


def test_it_searches_each_typed_word_as_it_is_typed(client, world):
    percent = UserFactory(last_name="Fifty%off")
    underscore = UserFactory(last_name="Under_score")
    buckets = {
        user.pk: BucketFactory(
            share=ShareFactory(sender=world.sender_a, source_department=world.dept_a),
            recipient_user=user,
        )
        for user in (percent, underscore)
    }
    client.force_login(world.admin_a)

    def found(q):
        return set(_rows(client.get(PAGE, {"q": q})))

    # One statement for every one-word search; wildcards typed match themselves.
    assert found("fifty%") == {buckets[percent.pk].pk}
    assert found("%") == {buckets[percent.pk].pk}
    assert found("r_s") == {buckets[underscore.pk].pk}
    assert found("under_") == {buckets[underscore.pk].pk}
    assert found("u_der") == set()
    assert found("score fifty") == set()
    assert found("score under") == {buckets[underscore.pk].pk}


def test_it_paginates(client, world):
    share = ShareFactory(sender=world.sender_a, source_department=world.dept_a)
    for _ in range(26):
        BucketFactory(share=share)
    client.force_login(world.admin_a)

    first = client.get(PAGE)
    second = client.get(PAGE, {"page": 2})

    assert len(first.context["rows"]) == 25
    assert len(second.context["rows"]) == 2


def _count_queries(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(PAGE)
    assert response.status_code == 200
    return len(queries)


def test_it_runs_a_constant_number_of_queries(client, world):
    client.force_login(world.admin_a)
    _count_queries(client)  # warm caches (content types, session)
    few = _count_queries(client)
    for _ in range(6):
        bucket = locked_bucket(department=world.dept_a, sender=world.sender_a)
        bucket.share.studies.add(StudyFactory(patient__department=world.dept_a))
        BucketOpening.objects.create(bucket=bucket, user=bucket.recipient_user)

    many = _count_queries(client)

    assert many == few


def test_it_sends_an_anonymous_visitor_to_login(client):
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_exports_the_access_log_of_a_department_for_a_date_range(client, world):
    client.force_login(world.admin_a)
    _unlock(client, world.bucket_a)
    client.force_login(world.admin_b)
    _unlock(client, world.bucket_b)
    client.force_login(world.admin_a)
    today = timezone.now().date()

    response = client.get(
        reverse("sharing:audit_export"),
        {"department": world.dept_a.pk, "date_from": today, "date_to": today},
    )
    other = client.get(
        reverse("sharing:audit_export"),
        {"department": world.dept_b.pk, "date_from": today, "date_to": today},
    )
    earlier = client.get(
        reverse("sharing:audit_export"),
        {
            "department": world.dept_a.pk,
            "date_from": today - datetime.timedelta(days=9),
            "date_to": today - datetime.timedelta(days=1),
        },
    )

    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert response["Content-Disposition"].startswith(
        'attachment; filename="audit-alpha'
    )
    assert response["Cache-Control"] == "no-store"
    assert len(lines) == 2
    assert lines[1].split(",")[1:3] == ["bucket_unlocked", "admin-a"]
    assert other.status_code == 400  # not a department admin_a may choose
    assert len(b"".join(earlier.streaming_content).decode().strip().splitlines()) == 1


def test_it_refuses_the_export_to_users_who_administer_nothing(client, world):
    client.force_login(world.sender_a)

    response = client.get(reverse("sharing:audit_export"))

    assert response.status_code == 403


# -- a re-sharer of anonymized data --------------------------------------------------


@pytest.fixture
def reshare():
    """Department A shares anonymized with an outsider, who shares it on."""
    department = DepartmentFactory()
    sender = UserFactory(departments=[department])
    outsider = UserFactory()
    study = StudyFactory(
        patient__department=department, patient__family_name="Vandermeulen"
    )
    parent = BucketFactory(
        share=ShareFactory(
            sender=sender,
            source_department=department,
            anonymize=True,
            allow_further_sharing=True,
            studies=[study],
        ),
        recipient_user=outsider,
    )
    child = BucketFactory(
        share=ShareFactory(
            sender=outsider,
            source_department=department,
            anonymize=True,
            parent_bucket=parent,
            studies=[study],
        ),
    )
    return outsider, child, study


def test_it_hides_the_patient_from_a_resharer_of_anonymized_data(client, reshare):
    outsider, child, study = reshare
    client.force_login(outsider)

    response = client.get(PAGE)

    assert [row["bucket"].pk for row in response.context["rows"]] == [child.pk]
    content = response.content.decode()
    assert study.patient.family_name not in content
    assert study.patient.patient_id not in content


def test_it_does_not_let_a_resharer_search_the_real_patient_name(client, reshare):
    outsider, child, study = reshare
    client.force_login(outsider)

    found = client.get(PAGE, {"q": study.patient.family_name})
    other = client.get(PAGE, {"q": "Nobodyatall"})

    assert len(found.context["rows"]) == len(other.context["rows"]) == 0
