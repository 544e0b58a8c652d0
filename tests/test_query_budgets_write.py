"""Query budgets of share creation: the same queries for 1 recipient as for 50.

`share_create` (and so the wizard's final POST) writes the buckets, pseudonyms,
mails and favorites of all its recipients with one INSERT each, and reads its
recipients with one query per kind; these count every query of a share to 1
recipient and to 50 (users, groups, departments, starred, anonymized), and
check what was made is what a sender and the recipients would see.
"""

import datetime
from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from recipients.models import Favorite
from sharing.models import AuditEvent, Bucket, Notification, Pseudonym, Share
from sharing.wizard.services import ShareRecipient, share_create
from tests.factories import (
    DepartmentFactory,
    PatientFactory,
    StudyFactory,
    UserFactory,
    UserGroupFactory,
)
from tests.sharing.wizard_support import (
    post_step,
    recipients_data,
    start,
    studies_data,
)

pytestmark = pytest.mark.django_db

MANY = 50
SHARE_BUDGET = 30


class World:
    def __init__(self):
        self.department = DepartmentFactory(
            code="budget-write-rad", max_recipients=MANY
        )
        self.sender = UserFactory(
            username="budget-writer", departments=[self.department]
        )
        patients = [PatientFactory(department=self.department) for _ in range(2)]
        self.studies = [
            StudyFactory(patient=patients[0]),
            StudyFactory(patient=patients[0]),
            StudyFactory(patient=patients[1]),
        ]
        self.users = [UserFactory(username=f"budget-to-{i}") for i in range(MANY)]
        group = UserGroupFactory(name="Budget tumour board")
        group.members.set(UserFactory(username=f"budget-member-{i}") for i in range(3))
        ward = DepartmentFactory(code="budget-write-ward", is_public=True)
        for i in range(2):
            UserFactory(username=f"budget-ward-{i}", departments=[ward])
        self.group, self.ward = group, ward

    def recipients(self, n, *, mixed=False):
        """n recipients, all starred users; `mixed`: the second a group, the third
        a department."""
        chosen = [
            ShareRecipient(
                kind="user", pk=u.pk, require_otp=True, send_mail=True, star=True
            )
            for u in self.users[:n]
        ]
        if mixed:
            chosen[1] = ShareRecipient(
                kind="group", pk=self.group.pk, require_otp=False, send_mail=True
            )
            chosen[2] = ShareRecipient(
                kind="department",
                pk=self.ward.pk,
                require_otp=False,
                send_mail=True,
                star=True,
            )
        return chosen


@pytest.fixture
def world():
    return World()


def create(world, recipients, *, anonymize):
    return share_create(
        sender=world.sender,
        studies=world.studies,
        recipients=recipients,
        access="read",
        reason="Budget: second opinion",
        language="en",
        valid_until=timezone.localdate() + datetime.timedelta(days=14),
        patient_agreed=True,
        label=None,
        label_scope="",
        urgent=False,
        anonymize=anonymize,
        allow_further_sharing=False,
        message="",
    )


def counted(function):
    with CaptureQueriesContext(connection) as captured:
        result = function()
    # Savepoints exist only because each test runs inside a transaction.
    queries = [
        q["sql"][:160]
        for q in captured.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]
    return result, queries


def test_share_create_runs_the_same_queries_for_one_user_as_for_fifty(
    world, django_capture_on_commit_callbacks
):
    create(world, world.recipients(1), anonymize=False)  # the preferences exist
    spare = UserFactory(username="budget-spare")
    single = [
        ShareRecipient(
            kind="user", pk=spare.pk, require_otp=True, send_mail=True, star=True
        )
    ]
    with django_capture_on_commit_callbacks():
        _one, one = counted(lambda: create(world, single, anonymize=False))
    with django_capture_on_commit_callbacks():
        share, many = counted(
            lambda: create(world, world.recipients(MANY), anonymize=False)
        )

    assert len(many) == len(one), "\n".join(many)
    assert len(many) <= SHARE_BUDGET, "\n".join(many)
    assert share.buckets.count() == MANY
    assert Notification.objects.filter(bucket__share=share).count() == MANY


@pytest.mark.parametrize("anonymize", [False, True])
def test_share_create_runs_the_same_queries_for_three_kinds_as_for_fifty(
    world, anonymize, django_capture_on_commit_callbacks
):
    few = world.recipients(3, mixed=True)
    # The sender's preferences exist (as they do after a first share).
    create(world, [replace(r, star=False) for r in few], anonymize=anonymize)
    with django_capture_on_commit_callbacks():
        _few, three = counted(lambda: create(world, few, anonymize=anonymize))
    with django_capture_on_commit_callbacks() as callbacks:
        share, many = counted(
            lambda: create(
                world, world.recipients(MANY, mixed=True), anonymize=anonymize
            )
        )

    assert len(many) == len(three), "\n".join(many)
    assert len(many) <= SHARE_BUDGET, "\n".join(many)

    buckets = list(Bucket.objects.filter(share=share).order_by("pk"))
    assert len(buckets) == MANY
    assert len({b.token_hash for b in buckets}) == MANY
    assert all(b.link_secret and b.token_hash for b in buckets)
    assert buckets[1].recipient_group == world.group
    assert buckets[2].recipient_department == world.ward
    assert [b.recipient_user_id for b in buckets[3:]] == [
        u.pk for u in world.users[3:MANY]
    ]
    assert share.studies.count() == 3
    mails = Notification.objects.filter(bucket__share=share)
    # 48 users, the group's 3 members, the ward's 2: one mail each, all pending,
    # handed to the broker only once the transaction committed, as one task the
    # worker fans out (one publish for the request, not one per mail).
    assert mails.count() == MANY - 2 + 3 + 2
    assert set(mails.values_list("status", flat=True)) == {"pending"}
    assert len(callbacks) == 1
    (event,) = AuditEvent.objects.filter(share=share)
    assert event.details["buckets"] == [b.pk for b in buckets]
    # Every starred user and the department; the group was not starred.
    assert Favorite.objects.filter(owner=world.sender).count() == MANY - 1
    if anonymize:
        # Two patients: one pseudonym each, in each bucket.
        assert Pseudonym.objects.filter(bucket__share=share).count() == 2 * MANY


def test_an_unknown_recipient_makes_no_share(world):
    gone = world.users[4]
    gone.is_active = False
    gone.save()

    with pytest.raises(type(gone).DoesNotExist):
        create(world, world.recipients(MANY, mixed=True), anonymize=False)

    assert not Share.objects.filter(sender=world.sender).exists()
    assert not Notification.objects.exists()


def wizard_final_post(client, world, n):
    """Pass the wizard to its last step with n recipients; count its final POST."""
    start(client, world.studies)
    assert post_step(client, "studies", studies_data(world.studies)).status_code == 302
    rows = [(f"user:{u.pk}", True, True) for u in world.users[:n]]
    response = post_step(client, "recipients", recipients_data(rows))
    assert response.status_code == 302, response.context["form"].errors
    page = client.get(reverse("sharing:share_step", kwargs={"step": "parameters"}))
    digest = page.context["confirm_digest"]
    final = {
        "access": "read",
        "reason": "Budget: second opinion",
        "language": "en",
        "valid_until": (timezone.localdate() + datetime.timedelta(days=14)).strftime(
            "%d/%m/%Y"
        ),
        "patient_agreed": "on",
        "confirm": digest,
    }
    payload = {f"parameters-{k}": v for k, v in final.items() if k != "confirm"}
    payload["confirm"] = digest
    payload["share_wizard-current_step"] = "parameters"
    url = reverse(
        "sharing:share_run_step",
        kwargs={"run": page.context["wizard_run"], "step": "parameters"},
    )
    response, queries = counted(lambda: client.post(url, payload))
    assert response.status_code == 302
    return queries


def test_the_wizards_final_post_runs_the_same_queries_for_one_as_for_fifty(
    client, world
):
    client.force_login(world.sender)
    wizard_final_post(client, world, 1)  # the session and preferences exist
    one = wizard_final_post(client, world, 1)
    many = wizard_final_post(client, world, MANY)

    assert len(many) == len(one), "\n".join(many)
    assert len(many) <= SHARE_BUDGET + 10, "\n".join(many)
    share = Share.objects.filter(sender=world.sender).order_by("-pk").first()
    assert share.buckets.count() == MANY
