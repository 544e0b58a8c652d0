"""share_create's own guards: what it refuses and keeps whoever calls it.

The wizard's forms check every rule first; these call the service directly, as
an admin action, a command or a future API would, and look at what was saved
and what was mailed.
"""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from sharing.models import AuditEvent, Bucket, Label, Notification, Pseudonym, Share
from sharing.wizard.services import ShareRecipient, share_create
from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    PatientFactory,
    ShareFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def department():
    return DepartmentFactory(code="share-create-rad", name="Radiology Share Create")


@pytest.fixture
def sender(department):
    return UserFactory(username="share-sender", departments=[department])


@pytest.fixture
def study(department):
    patient = PatientFactory(
        department=department, given_name="Jan", family_name="Peeters"
    )
    return StudyFactory(patient=patient, description="CT thorax")


@pytest.fixture
def recipient():
    return UserFactory(username="share-recipient", email="recipient@example.org")


def _to(user, *, send_mail=True):
    return ShareRecipient(
        kind="user", pk=user.pk, require_otp=False, send_mail=send_mail
    )


def _create(*, sender, studies, recipients, **overrides):
    arguments = {
        "access": "read",
        "reason": "Second opinion on the nodule",
        "language": "en",
        "valid_until": timezone.localdate() + datetime.timedelta(days=7),
        "patient_agreed": True,
        "label": None,
        "label_scope": "",
        "urgent": False,
        "anonymize": False,
        "allow_further_sharing": False,
        "message": "",
    }
    arguments.update(overrides)
    return share_create(
        sender=sender, studies=studies, recipients=recipients, **arguments
    )


def _nothing_saved():
    return not (
        Share.objects.exists()
        or Bucket.objects.exists()
        or Pseudonym.objects.exists()
        or Notification.objects.exists()
        or AuditEvent.objects.filter(action=AuditEvent.Action.SHARE_CREATED).exists()
    )


def test_the_same_arguments_with_agreement_share(sender, study, recipient):
    # The control for the refusals below: only the spoiled argument refuses.
    share = _create(sender=sender, studies=[study], recipients=[_to(recipient)])

    assert list(share.studies.all()) == [study]
    assert share.buckets.get().recipient_user == recipient
    assert Notification.objects.filter(bucket__share=share).exists()


def test_nothing_is_shared_without_the_patients_agreement(sender, study, recipient):
    with pytest.raises(ValueError, match="patient's agreement"):
        _create(
            sender=sender,
            studies=[study],
            recipients=[_to(recipient)],
            patient_agreed=False,
        )

    assert _nothing_saved()


def test_it_refuses_studies_of_two_departments(sender, study, recipient):
    other = StudyFactory(
        patient=PatientFactory(department=DepartmentFactory(code="share-create-oth"))
    )

    with pytest.raises(ValueError, match="one source department"):
        _create(sender=sender, studies=[study, other], recipients=[_to(recipient)])

    assert _nothing_saved()


def test_it_refuses_no_studies(sender, recipient):
    with pytest.raises(ValueError, match="one or more studies"):
        _create(sender=sender, studies=[], recipients=[_to(recipient)])

    assert _nothing_saved()


def test_it_refuses_no_recipients(sender, study):
    with pytest.raises(ValueError, match="at least one recipient"):
        _create(sender=sender, studies=[study], recipients=[])

    assert _nothing_saved()


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_it_refuses_a_blank_reason(sender, study, recipient, reason):
    with pytest.raises(ValueError, match="reason"):
        _create(
            sender=sender, studies=[study], recipients=[_to(recipient)], reason=reason
        )

    assert _nothing_saved()


def _anonymized_bucket_of(study, *, resharer):
    share = ShareFactory(
        source_department=study.department,
        studies=[study],
        anonymize=True,
        allow_further_sharing=True,
    )
    return BucketFactory(share=share, recipient_user=resharer)


def test_a_reshare_of_an_anonymized_bucket_stays_anonymized(
    study, recipient, django_capture_on_commit_callbacks
):
    resharer = UserFactory(username="share-resharer")
    parent = _anonymized_bucket_of(study, resharer=resharer)
    other = UserFactory(username="share-second", email="second@example.org")

    with django_capture_on_commit_callbacks(execute=True):
        share = _create(
            sender=resharer,
            studies=[study],
            recipients=[_to(recipient), _to(other)],
            anonymize=False,
            parent_bucket=parent,
        )

    assert share.anonymize
    assert share.parent_bucket == parent
    for bucket in share.buckets.all():
        pseudonym = bucket.pseudonyms.get()
        assert pseudonym.patient == study.patient
        assert "Peeters" not in pseudonym.full_name
    assert sorted(m.to[0] for m in mail.outbox) == [
        "recipient@example.org",
        "second@example.org",
    ]
    for message in mail.outbox:
        bodies = [message.body, *(content for content, _type in message.alternatives)]
        pseudonym = Pseudonym.objects.get(
            bucket__share=share, bucket__recipient_user__email=message.to[0]
        )
        for body in bodies:
            assert "J.P." not in body and "Peeters" not in body
        assert f"Patient {pseudonym.initials}: CT thorax" in message.body


def test_a_reshare_of_a_plain_bucket_may_stay_plain(study, recipient):
    resharer = UserFactory(username="share-resharer")
    share = ShareFactory(
        source_department=study.department, studies=[study], allow_further_sharing=True
    )
    parent = BucketFactory(share=share, recipient_user=resharer)

    reshare = _create(
        sender=resharer,
        studies=[study],
        recipients=[_to(recipient)],
        parent_bucket=parent,
    )

    assert not reshare.anonymize
    assert not Pseudonym.objects.filter(bucket__share=reshare).exists()


def test_it_drops_the_label_scope_without_a_label(sender, study, recipient):
    share = _create(
        sender=sender,
        studies=[study],
        recipients=[_to(recipient)],
        label=None,
        label_scope=Share.LabelScope.GROUP,
    )

    share.refresh_from_db()
    assert share.label is None
    assert share.label_scope == ""


def test_it_keeps_the_label_scope_with_a_label(sender, study, recipient, department):
    label = Label.objects.create(department=department, name="Tumour board")

    share = _create(
        sender=sender,
        studies=[study],
        recipients=[_to(recipient)],
        label=label,
        label_scope=Share.LabelScope.GROUP,
    )

    share.refresh_from_db()
    assert share.label == label
    assert share.label_scope == Share.LabelScope.GROUP
