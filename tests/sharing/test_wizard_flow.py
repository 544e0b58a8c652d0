"""The share wizard end to end through its real POSTs: steps, URLs, what it creates."""

import re

import pytest
from django.urls import reverse

from recipients.models import Favorite
from sharing.models import AuditEvent, Bucket, Notification, SenderPreferences, Share
from tests.sharing.wizard_support import (
    MANAGEMENT,
    key,
    nothing_created,
    parameters_data,
    post_step,
    recipients_data,
    run_until_parameters,
    start,
    step_url,
    studies_data,
)

pytestmark = pytest.mark.django_db


def test_it_creates_the_share_with_one_bucket_per_recipient(sender_client, world):
    run_until_parameters(
        sender_client,
        world.studies,
        [(key(world.fr), True, True, True), (key(world.nl), False, True, False)],
    )

    response = post_step(
        sender_client,
        "parameters",
        parameters_data(access="write", message="Look at segment 6.", urgent="on"),
    )

    share = Share.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("sharing:share_done", args=[share.pk])
    assert share.sender == world.sender
    assert share.source_department == world.department
    assert set(share.studies.all()) == set(world.studies)
    assert share.access == "write"
    assert share.urgent is True
    assert share.message == "Look at segment 6."
    assert share.patient_agreed_at is not None
    buckets = list(share.buckets.order_by("pk"))
    assert [b.recipient_user for b in buckets] == [world.fr, world.nl]
    assert [(b.require_otp, b.send_mail) for b in buckets] == [
        (True, True),
        (False, True),
    ]
    assert all(len(b.token_hash) == 64 and b.link_secret for b in buckets)
    assert len({b.token_hash for b in buckets}) == 2


def test_it_records_reason_preferences_favorites_and_pending_mails(
    sender_client, world
):
    run_until_parameters(
        sender_client,
        world.studies[:1],
        [(key(world.fr), True, True, True), (key(world.nl), False, False, False)],
    )

    post_step(sender_client, "parameters", parameters_data(reason="Tumour board"))

    share = Share.objects.get()
    event = AuditEvent.objects.get(action=AuditEvent.Action.SHARE_CREATED)
    assert event.share == share
    assert event.actor == world.sender
    assert event.details["reason"] == "Tumour board"
    assert event.study_uids == [world.studies[0].study_instance_uid]
    # The last recipient's options are the sender's next defaults (rule 3).
    preferences = SenderPreferences.objects.get(user=world.sender)
    assert (preferences.require_otp, preferences.send_mail) == (False, False)
    # Only the starred recipient became a favorite, once the share completed.
    assert list(
        Favorite.objects.filter(owner=world.sender).values_list("user", flat=True)
    ) == [world.fr.pk]
    # The outbox seam: a pending mail for the recipient who asked for one.
    assert list(Notification.objects.values_list("to_address", "status")) == [
        (world.fr.email, "pending")
    ]


def test_it_does_not_add_a_starred_favorite_before_the_share_completes(
    sender_client, world
):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 0, 1, 1)])

    post_step(sender_client, "parameters", parameters_data(patient_agreed=None))

    assert not Favorite.objects.exists()
    assert nothing_created()


def test_it_gives_each_step_its_own_url_and_previous_goes_back(sender_client, world):
    response = start(sender_client, world.studies)
    # A new wizard run, under its own URL (rule 20).
    assert re.fullmatch(r"/share/wizard/[0-9a-f]{16}/studies/", response.url)
    page = sender_client.get(step_url("studies"))
    assert page.status_code == 200
    assert "Marie Peeters" in page.content.decode()

    response = post_step(sender_client, "studies", studies_data(world.studies))
    assert response.url == step_url("recipients")

    back = sender_client.post(
        step_url("recipients"),
        {MANAGEMENT: "recipients", "wizard_goto_step": "studies"},
    )
    assert back.url == step_url("studies")
    # The browser's back and forward buttons: each step's URL renders it.
    assert sender_client.get(step_url("studies")).status_code == 200
    recipients_page = sender_client.get(step_url("recipients"))
    assert recipients_page.status_code == 200
    assert "Add extra recipient" in recipients_page.content.decode()


def test_it_keeps_the_recipients_when_going_back_from_parameters(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1, 0)])

    sender_client.post(
        step_url("parameters"),
        {MANAGEMENT: "parameters", "wizard_goto_step": "recipients"},
    )
    page = sender_client.get(step_url("recipients")).content.decode()

    assert f'value="{key(world.fr)}"' in page
    assert world.fr.display_name in page


def test_it_sends_a_later_step_back_to_the_first_unfinished_one(sender_client, world):
    start(sender_client, world.studies)

    response = sender_client.get(step_url("parameters"))

    assert response.status_code == 302
    assert response.url == step_url("studies")


def test_it_refuses_a_parameters_post_without_the_earlier_steps(sender_client, world):
    start(sender_client, world.studies)

    response = post_step(sender_client, "parameters", parameters_data())

    assert response.status_code in (200, 302)
    assert nothing_created()


def test_it_never_creates_a_share_on_a_get_of_the_done_url(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1, 0)])

    response = sender_client.get(step_url("done"))

    assert response.status_code == 302
    assert nothing_created()


def test_it_shows_the_confirmation_pop_up_to_the_sender_only(
    sender_client, client, world
):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1, 0)])
    response = post_step(
        sender_client,
        "parameters",
        parameters_data(reason="SECRET-REASON", valid_until="", unlimited="on"),
    )

    page = sender_client.get(response.url).content.decode()

    assert '<dialog class="share-dialog"' in page
    assert "Copy this information" in page
    assert "Share again" in page
    assert "Marie Peeters" in page
    assert world.fr.display_name in page
    assert "Images and read access to the report" in page
    assert "Unlimited access" in page
    assert "SECRET-REASON" not in page
    client.force_login(world.fr)
    assert client.get(response.url).status_code == 404


def test_it_shares_again_the_same_studies_from_the_recipients_step(
    sender_client, world
):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1, 0)])
    post_step(sender_client, "parameters", parameters_data())
    share = Share.objects.get()

    response = sender_client.get(reverse("sharing:share_again", args=[share.pk]))

    assert re.fullmatch(r"/share/wizard/[0-9a-f]{16}/recipients/", response.url)
    page = sender_client.get(response.url)
    assert page.status_code == 200
    assert "CT thorax" in page.content.decode()
    post_step(sender_client, "recipients", recipients_data([(key(world.nl), 0, 1, 0)]))
    post_step(sender_client, "parameters", parameters_data())
    again = Share.objects.exclude(pk=share.pk).get()
    assert set(again.studies.all()) == set(share.studies.all())
    assert again.buckets.get().recipient_user == world.nl


def test_it_hides_the_patient_in_the_confirmation_of_an_anonymized_share(
    sender_client, world
):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1, 0)])
    response = post_step(sender_client, "parameters", parameters_data(anonymize="on"))

    page = sender_client.get(response.url).content.decode()

    assert "Peeters" not in page
    assert "Anonymized patient" in page
    bucket = Bucket.objects.get()
    pseudonym = bucket.pseudonyms.get()
    assert pseudonym.family_name == "Anonymous"
    assert pseudonym.given_name.isdigit()
    assert pseudonym.pseudo_patient_id and "PID" not in pseudonym.pseudo_patient_id


def test_it_preselects_the_senders_last_options_for_each_recipient(
    sender_client, world
):
    SenderPreferences.objects.create(
        user=world.sender, require_otp=False, send_mail=True
    )
    start(sender_client, world.studies)
    post_step(sender_client, "studies", studies_data(world.studies))

    form = sender_client.get(step_url("recipients")).context["form"]

    assert form.forms[0]["require_otp"].value() is False
    assert form.forms[0]["send_mail"].value() is True
