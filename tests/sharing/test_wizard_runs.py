"""Rule 20: two wizards in one login never mix; a share is made from exactly what
the confirming page showed; a resubmitted confirmation makes no second share."""

import re

import pytest
from django.urls import reverse

from sharing.models import Share
from tests.factories import PatientFactory, StudyFactory, UserFactory
from tests.sharing.wizard_support import (
    MANAGEMENT,
    key,
    nothing_created,
    parameters_data,
    recipients_data,
    studies_data,
)

pytestmark = pytest.mark.django_db

RUN_URL = re.compile(r"/share/wizard/([0-9a-f]{16})/studies/")
DIGEST = re.compile(r'name="confirm" value="([0-9a-f]+)"')


def post_run(client, run, step, data):
    """Post one step to a run's own URL, as its page does."""
    payload = {MANAGEMENT: step}
    for name, value in data.items():
        prefixed = name.startswith(f"{step}-") or name == "confirm"
        payload[name if prefixed else f"{step}-{name}"] = value
    url = reverse("sharing:share_run_step", kwargs={"run": run, "step": step})
    return client.post(url, payload)


def open_run(client, studies, rows):
    """Start a wizard run and pass its first two steps; return the run id."""
    query = "&".join(f"studies={s.pk}" for s in studies)
    started = client.get(f"{reverse('sharing:share_start')}?{query}")
    run = RUN_URL.fullmatch(started.url).group(1)
    assert post_run(client, run, "studies", studies_data(studies)).status_code == 302
    assert post_run(client, run, "recipients", recipients_data(rows)).status_code == 302
    return run


def confirming_page(client, run):
    url = reverse("sharing:share_run_step", kwargs={"run": run, "step": "parameters"})
    page = client.get(url)
    assert page.status_code == 200
    return page.content.decode()


def digest_of(page):
    return DIGEST.search(page).group(1)


@pytest.fixture
def two_tabs(sender_client, world):
    """Tab A at step 3 (Peeters → world.fr); then tab B starts Claessens → world.de."""
    claessens = StudyFactory(
        patient=PatientFactory(
            department=world.department, given_name="Luc", family_name="Claessens"
        ),
        description="MR brain",
    )
    run_a = open_run(sender_client, world.studies[:1], [(key(world.fr), 0, 1)])
    page_a = confirming_page(sender_client, run_a)
    run_b = open_run(sender_client, [claessens], [(key(world.de), 0, 1)])
    return run_a, page_a, run_b, claessens


def test_tab_a_shares_what_tab_a_showed(sender_client, world, two_tabs):
    run_a, page_a, run_b, claessens = two_tabs
    assert "Marie Peeters" in page_a

    response = post_run(
        sender_client,
        run_a,
        "parameters",
        {**parameters_data(reason="Tab A's reason"), "confirm": digest_of(page_a)},
    )

    share = Share.objects.get()
    assert response.url == reverse("sharing:share_done", args=[share.pk])
    assert list(share.studies.all()) == [world.studies[0]]
    assert share.buckets.get().recipient_user == world.fr
    assert share.reason == "Tab A's reason"
    # Tab B's run is untouched and still makes its own share.
    page_b = confirming_page(sender_client, run_b)
    post_run(
        sender_client,
        run_b,
        "parameters",
        {**parameters_data(reason="Tab B's reason"), "confirm": digest_of(page_b)},
    )
    share_b = Share.objects.exclude(pk=share.pk).get()
    assert list(share_b.studies.all()) == [claessens]
    assert share_b.buckets.get().recipient_user == world.de


def test_it_refuses_a_confirmation_of_what_changed_since(sender_client, world):
    run = open_run(sender_client, world.studies[:1], [(key(world.fr), 0, 1)])
    shown = digest_of(confirming_page(sender_client, run))
    # The same run in another window: back to the recipients, another doctor.
    post_run(sender_client, run, "recipients", recipients_data([(key(world.de), 0, 1)]))

    response = post_run(
        sender_client, run, "parameters", {**parameters_data(), "confirm": shown}
    )

    assert response.status_code == 200
    assert "Nothing was shared: the studies or recipients changed" in (
        response.content.decode()
    )
    assert nothing_created()


def test_it_refuses_a_confirmation_without_its_digest(sender_client, world):
    run = open_run(sender_client, world.studies[:1], [(key(world.fr), 0, 1)])

    response = post_run(sender_client, run, "parameters", parameters_data())

    assert response.status_code == 200
    assert nothing_created()


def test_a_resubmitted_confirmation_leads_to_the_same_share(sender_client, world):
    run = open_run(sender_client, world.studies[:1], [(key(world.fr), 0, 1)])
    data = {
        **parameters_data(),
        "confirm": digest_of(confirming_page(sender_client, run)),
    }

    first = post_run(sender_client, run, "parameters", data)
    second = post_run(sender_client, run, "parameters", data)

    share = Share.objects.get()
    assert first.url == second.url == reverse("sharing:share_done", args=[share.pk])
    assert share.buckets.count() == 1


def test_another_users_run_id_opens_nothing(client, sender_client, world):
    run = open_run(sender_client, world.studies[:1], [(key(world.fr), 0, 1)])
    client.force_login(UserFactory(username="intruder", departments=[world.department]))

    url = reverse("sharing:share_run_step", kwargs={"run": run, "step": "parameters"})
    response = client.get(url)

    assert response.status_code == 302
    assert response.url == reverse("studies:overview")
