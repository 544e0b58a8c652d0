"""Re-share (rule 13) and the broadest access over several buckets (rule 19)."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing.access import otp_mark_verified
from sharing.models import Share
from sharing.selectors import (
    can_reshare,
    effective_access_for_user,
    studies_shareable_by,
)
from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    ShareFactory,
    UserFactory,
    UserGroupFactory,
)
from tests.sharing.wizard_support import (
    in_days,
    key,
    nothing_created,
    parameters_data,
    post_step,
    recipients_data,
    step_url,
    studies_data,
)

pytestmark = pytest.mark.django_db


def _received(world, *, access="write", days=20, anonymize=False, further=True, **kw):
    share = ShareFactory(
        sender=world.sender,
        source_department=world.department,
        access=access,
        valid_until=None
        if days is None
        else timezone.localdate() + datetime.timedelta(days),
        anonymize=anonymize,
        allow_further_sharing=further,
        studies=world.studies,
    )
    return BucketFactory(share=share, recipient_user=world.fr, **kw)


@pytest.fixture
def resharer(client, world):
    client.force_login(world.fr)
    return client


def _reshare(client, bucket, world, **parameters):
    response = client.get(reverse("sharing:reshare_start", args=[bucket.pk]))
    assert response.status_code == 302, response.status_code
    assert response.url == step_url("studies")
    post_step(client, "studies", studies_data(world.studies))
    post_step(client, "recipients", recipients_data([(key(world.nl), 1, 1)]))
    return post_step(client, "parameters", parameters_data(**parameters))


def _start_count():
    return Share.objects.count()


# -- Re-share ------------------------------------------------------------------------


def test_it_lets_a_recipient_share_further_within_their_own_rights(resharer, world):
    bucket = _received(world, access="write", days=20)
    before = _start_count()

    response = _reshare(resharer, bucket, world, access="read", valid_until=in_days(20))

    assert response.status_code == 302
    reshare = Share.objects.exclude(pk=bucket.share_id).get()
    assert Share.objects.count() == before + 1
    assert reshare.parent_bucket == bucket
    assert reshare.sender == world.fr
    assert reshare.source_department == world.department
    assert reshare.buckets.get().recipient_user == world.nl


def test_it_refuses_more_access_than_the_resharer_holds(resharer, world):
    bucket = _received(world, access="read")

    response = _reshare(resharer, bucket, world, access="write")

    assert response.context["form"].errors["access"] == [
        "You cannot give more access than you were given."
    ]
    assert Share.objects.count() == 1


def test_it_refuses_a_later_validity_than_the_resharers(resharer, world):
    bucket = _received(world, days=5)

    response = _reshare(resharer, bucket, world, valid_until=in_days(6))

    assert response.context["form"].errors["valid_until"] == [
        f"The latest possible date is {in_days(5)}."
    ]
    assert Share.objects.count() == 1


def test_it_refuses_unlimited_when_the_resharer_is_limited(resharer, world):
    bucket = _received(world, days=5)

    response = _reshare(resharer, bucket, world, valid_until="", unlimited="on")

    assert response.context["form"].errors["valid_until"]
    assert Share.objects.count() == 1


def test_it_allows_unlimited_when_the_resharer_holds_unlimited(resharer, world):
    bucket = _received(world, days=None)

    response = _reshare(resharer, bucket, world, valid_until="", unlimited="on")

    assert response.status_code == 302
    assert Share.objects.exclude(pk=bucket.share_id).get().valid_until is None


def test_it_keeps_anonymized_data_anonymized(resharer, world):
    bucket = _received(world, anonymize=True)
    real_name = world.studies[0].patient.family_name

    resharer.get(reverse("sharing:reshare_start", args=[bucket.pk]))
    studies_page = resharer.get(step_url("studies")).content.decode()
    response = _reshare(resharer, bucket, world)  # "anonymize" not posted

    assert real_name not in studies_page
    assert "Anonymous" in studies_page
    assert response.status_code == 302
    reshare = Share.objects.exclude(pk=bucket.share_id).get()
    assert reshare.anonymize is True
    assert reshare.buckets.get().pseudonyms.count() == 1
    assert real_name not in resharer.get(response.url).content.decode()


def test_it_refuses_a_study_outside_the_received_bucket(resharer, world):
    bucket = _received(world)
    resharer.get(reverse("sharing:reshare_start", args=[bucket.pk]))

    response = post_step(
        resharer, "studies", studies_data([world.studies[0], world.foreign_study])
    )

    assert response.context["form"].errors["studies"]


def test_it_refuses_a_reshare_without_the_permission(resharer, world):
    bucket = _received(world, further=False)

    response = resharer.get(reverse("sharing:reshare_start", args=[bucket.pk]))

    assert response.status_code == 403
    assert not can_reshare(user=world.fr, bucket=bucket)
    assert can_reshare(user=world.fr, bucket=_received(world))


def test_it_refuses_the_reshare_of_someone_elses_bucket(client, world):
    bucket = _received(world)
    client.force_login(world.nl)

    response = client.get(reverse("sharing:reshare_start", args=[bucket.pk]))

    assert response.status_code in (403, 404)
    assert Share.objects.count() == 1


def test_it_refuses_a_reshare_once_the_bucket_is_revoked_mid_wizard(resharer, world):
    bucket = _received(world)
    resharer.get(reverse("sharing:reshare_start", args=[bucket.pk]))
    post_step(resharer, "studies", studies_data(world.studies))
    post_step(resharer, "recipients", recipients_data([(key(world.nl), 1, 1)]))
    bucket.revoked_at = timezone.now()
    bucket.save()

    response = post_step(resharer, "parameters", parameters_data())

    assert response.status_code == 403
    assert Share.objects.count() == 1


def test_it_asks_for_the_sms_code_before_a_reshare(resharer, world):
    bucket = _received(world, require_otp=True)

    response = resharer.get(reverse("sharing:reshare_start", args=[bucket.pk]))

    assert response.status_code == 302
    assert response.url == reverse("sharing:bucket_code", args=[bucket.pk])


def test_it_starts_the_reshare_once_the_sms_code_was_entered(resharer, world):
    bucket = _received(world, require_otp=True)
    session = resharer.session

    class _Request:
        pass

    request = _Request()
    request.session = session
    otp_mark_verified(request, bucket)
    session.save()

    response = resharer.get(reverse("sharing:reshare_start", args=[bucket.pk]))

    assert response.url == step_url("studies")


def test_it_does_not_let_a_recipient_share_through_the_plain_start(resharer, world):
    _received(world)
    resharer.get(f"{reverse('sharing:share_start')}?studies={world.studies[0].pk}")

    response = post_step(resharer, "studies", studies_data(world.studies[:1]))

    assert response.context["form"].errors["studies"]
    assert nothing_created() is False  # only the received share exists
    assert Share.objects.count() == 1


# -- Rule 19 ---------------------------------------------------------------------------


def _bucket_for(user, study, *, access="read", days=10, anonymize=False, **kw):
    share = ShareFactory(
        access=access,
        valid_until=None
        if days is None
        else timezone.localdate() + datetime.timedelta(days),
        anonymize=anonymize,
        source_department=study.department,
        studies=[study],
    )
    return BucketFactory(share=share, recipient_user=user, **kw)


def test_it_gives_the_broadest_access_and_the_latest_validity(world):
    study = world.studies[0]
    _bucket_for(world.fr, study, access="write", days=3)
    _bucket_for(world.fr, study, access="read", days=30)

    access = effective_access_for_user(user=world.fr, study=study)

    assert access.access == "write"
    assert access.valid_until == timezone.localdate() + datetime.timedelta(30)
    assert access.can_write_report and access.can_read_report
    assert len(access.buckets) == 2


def test_it_lets_unlimited_win_over_any_date(world):
    study = world.studies[0]
    _bucket_for(world.fr, study, days=300)
    _bucket_for(world.fr, study, days=None)

    access = effective_access_for_user(user=world.fr, study=study)

    assert access.valid_until is None
    assert access.expires_at is None


def test_it_ignores_revoked_expired_and_locked_buckets(world):
    study = world.studies[0]
    _bucket_for(world.fr, study, access="read", days=5)
    _bucket_for(world.fr, study, access="write", days=50, revoked_at=timezone.now())
    _bucket_for(world.fr, study, access="write", days=-1)
    _bucket_for(world.fr, study, access="write", days=50, locked_at=timezone.now())

    access = effective_access_for_user(user=world.fr, study=study)

    assert access.access == "read"
    assert access.valid_until == timezone.localdate() + datetime.timedelta(5)


def test_it_counts_buckets_sent_to_the_users_group_and_department(world):
    study = world.studies[0]
    group = UserGroupFactory()
    group.members.add(world.fr)
    department = DepartmentFactory()
    world.fr.departments.add(department)
    ShareFactory(access="read", studies=[study])
    _bucket_for(world.fr, study, access="read", days=2)
    share = ShareFactory(
        access="write",
        valid_until=timezone.localdate() + datetime.timedelta(8),
        studies=[study],
    )
    BucketFactory(share=share, recipient_user=None, recipient_group=group)
    share = ShareFactory(
        access="read",
        valid_until=timezone.localdate() + datetime.timedelta(40),
        studies=[study],
    )
    BucketFactory(share=share, recipient_user=None, recipient_department=department)

    access = effective_access_for_user(user=world.fr, study=study)

    assert access.access == "write"
    assert access.valid_until == timezone.localdate() + datetime.timedelta(40)


def test_it_never_opens_the_report_through_an_anonymized_bucket(world):
    study = world.studies[0]
    _bucket_for(world.fr, study, access="write", anonymize=True)

    access = effective_access_for_user(user=world.fr, study=study)

    assert access.anonymized is True
    assert not access.can_read_report
    _bucket_for(world.fr, study, access="read")
    access = effective_access_for_user(user=world.fr, study=study)
    assert access.anonymized is False
    assert access.can_read_report and not access.can_write_report


def test_it_gives_nothing_without_a_bucket(world):
    assert effective_access_for_user(user=world.nl, study=world.studies[0]) is None
    assert effective_access_for_user(user=UserFactory(), study=world.studies[0]) is None


def test_it_lists_own_and_further_shareable_received_studies(world):
    _bucket_for(world.fr, world.foreign_study, access="read")
    assert list(studies_shareable_by(user=world.fr)) == []

    share = ShareFactory(
        access="read",
        allow_further_sharing=True,
        source_department=world.other_department,
        studies=[world.foreign_study],
    )
    BucketFactory(share=share, recipient_user=world.fr)

    assert list(studies_shareable_by(user=world.fr)) == [world.foreign_study]
    assert set(studies_shareable_by(user=world.sender)) == set(world.studies)
