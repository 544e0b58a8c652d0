"""Re-share (rule 13) and the broadest access over several buckets (rule 19)."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing.access.guard import otp_mark_verified
from sharing.models import Share
from tests.factories import (
    BucketFactory,
    ShareFactory,
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
    assert re.fullmatch(r"/share/wizard/[0-9a-f]{16}/studies/", response.url)
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
    assert _share_further_link(resharer, bucket) is None
    allowed = _received(world)
    assert _share_further_link(resharer, allowed) == reverse(
        "sharing:reshare_start", args=[allowed.pk]
    )


def _share_further_link(client, bucket):
    """Return where the received study's "Share further" button leads, or None."""
    study = bucket.share.studies.order_by("pk").first()
    page = client.get(
        reverse("sharing:received_study", args=[bucket.pk, study.pk])
    ).content.decode()
    match = re.search(r'href="([^"]+)">Share further<', page)
    return match.group(1) if match else None


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

    assert re.fullmatch(r"/share/wizard/[0-9a-f]{16}/studies/", response.url)


def test_it_does_not_let_a_recipient_share_through_the_plain_start(resharer, world):
    _received(world)
    resharer.get(f"{reverse('sharing:share_start')}?studies={world.studies[0].pk}")

    response = post_step(resharer, "studies", studies_data(world.studies[:1]))

    assert response.context["form"].errors["studies"]
    assert nothing_created() is False  # only the received share exists
    assert Share.objects.count() == 1
