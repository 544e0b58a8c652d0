"""The wizard keeps the recipients step's resolved directory entries for the GET
of a later step (issue 19, item 2), and never lets them decide a share: a change
of the directory is seen on the next GET, and the final POST resolves again."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recipients.directory_version import directory_changed
from recipients.models import User
from sharing.models import Share
from tests.sharing.wizard_support import (
    MANAGEMENT,
    key,
    parameters_data,
    run_until_parameters,
    step_url,
)

pytestmark = pytest.mark.django_db


def directory_queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    users = [
        q["sql"]
        for q in captured.captured_queries
        # Only the entry builder reads the physician numbers on these pages
        # (on PostgreSQL through its prepared statement, once prepared).
        if "recipients_physiciannumber" in q["sql"]
        or "EXECUTE directory_user_rows" in q["sql"]
    ]
    return response, users


def final_post(client, response):
    payload = {f"parameters-{k}": v for k, v in parameters_data().items()}
    payload[MANAGEMENT] = "parameters"
    payload["confirm"] = response.context["confirm_digest"]
    return client.post(response.context["wizard_action"], payload)


def test_a_later_get_reuses_the_resolved_recipients(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.en), 1, 1)])
    response, lookups = directory_queries(sender_client, step_url("parameters"))
    assert lookups == []
    assert [e.key for e, _ in response.context["recipients"]] == [key(world.en)]
    response, lookups = directory_queries(sender_client, step_url("recipients"))
    assert lookups == []
    assert key(world.en) in response.content.decode()
    # A change of the directory resolves again, once.
    directory_changed()
    _response, lookups = directory_queries(sender_client, step_url("parameters"))
    assert lookups
    _response, lookups = directory_queries(sender_client, step_url("parameters"))
    assert lookups == []


def test_a_recipient_made_inactive_is_seen_on_the_next_get(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.en), 1, 1)])
    world.en.is_active = False
    world.en.save()
    response = sender_client.get(step_url("parameters"))
    # The recipients step is no longer valid: the wizard goes back to it.
    assert response.status_code == 302
    assert response.url.endswith("/recipients/")


def test_a_changed_name_is_shown_on_the_next_get(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.en), 1, 1)])
    world.en.last_name = "Renamed-After-Resolving"
    world.en.save()
    page = sender_client.get(step_url("parameters")).content.decode()
    assert "Renamed-After-Resolving" in page


def test_the_final_post_resolves_again_even_when_no_signal_was_sent(
    sender_client, world
):
    run_until_parameters(sender_client, world.studies, [(key(world.en), 1, 1)])
    shown = sender_client.get(step_url("parameters"))
    # A bulk update sends no signal: the kept rows still look current to a GET...
    User.objects.filter(pk=world.en.pk).update(is_active=False)
    again = sender_client.get(step_url("parameters"))
    assert again.status_code == 200
    # ...but the share is not made from them.
    response = final_post(sender_client, shown)
    assert not Share.objects.exists()
    assert response.status_code == 200
    directory_changed()
    assert sender_client.get(step_url("parameters")).status_code == 302


def test_a_login_elsewhere_does_not_drop_the_kept_rows(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.en), 1, 1)])
    sender_client.get(step_url("parameters"))
    world.fr.last_login = world.fr.date_joined
    world.fr.save(update_fields=["last_login"])
    _response, lookups = directory_queries(sender_client, step_url("parameters"))
    assert lookups == []


def test_the_share_is_made_with_the_recipients_confirmed(sender_client, world):
    run_until_parameters(
        sender_client, world.studies, [(key(world.en), 1, 1), (key(world.fr), 0, 1)]
    )
    shown = sender_client.get(step_url("parameters"))
    response = final_post(sender_client, shown)
    assert response.status_code == 302
    share = Share.objects.get()
    assert sorted(b.recipient_user_id for b in share.buckets.all()) == sorted(
        [world.en.pk, world.fr.pk]
    )
