"""Issue 14, items 2-5, 7 and 8: the manual's rules through the wizard's real POSTs.

Previous keeps what was typed; the sticky options; the language rule over every
recipient; validity; group mail; what anonymize says and the pop-up shows.
"""

import html

import pytest
from django.urls import reverse

from recipients.models import Membership
from sharing.models import Label, Notification, SenderPreferences, Share
from tests.factories import DepartmentFactory, UserFactory, UserGroupFactory
from tests.factories import build_wizard_world as make_world
from tests.sharing.wizard_support import (
    MANAGEMENT,
    in_days,
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


def parameters_page(client):
    response = client.get(step_url("parameters"))
    assert response.status_code == 200
    return response


def previous(client, step, data, goto):
    payload = {MANAGEMENT: step, "wizard_goto_step": goto}
    payload.update({f"{step}-{name}": value for name, value in data.items()})
    return client.post(step_url(step), payload)


def share_done_page(client):
    share = Share.objects.get()
    return share, client.get(reverse("sharing:share_done", args=[share.pk]))


# -- item 2: Previous keeps what was typed ------------------------------------------


def test_previous_keeps_every_typed_parameter(sender_client, world):
    label = Label.objects.create(department=world.department, name="Oncology")
    rows = [(key(world.fr), 0, 1)]
    run_until_parameters(sender_client, world.studies, rows)
    typed = {
        "access": "write",
        "reason": "Tumour board on Friday",
        "language": "de",  # by hand: the recipient's language is French
        "valid_until": in_days(9),
        "patient_agreed": "on",
        "add_label": "on",
        "label": str(label.pk),
        "label_scope": "user",
        "urgent": "on",
        "anonymize": "on",
        "message": "See segment 6.",
    }

    previous(sender_client, "parameters", typed, "recipients")
    post_step(sender_client, "recipients", recipients_data(rows))
    form = parameters_page(sender_client).context["form"]

    shown = {name: form[name].value() for name in typed}
    assert shown == {
        **typed,
        "patient_agreed": True,
        "add_label": True,
        "urgent": True,
        "anonymize": True,
    }


def test_previous_keeps_the_values_even_when_the_page_was_not_valid(
    sender_client, world
):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 0, 1)])

    previous(sender_client, "parameters", {"reason": "Half typed"}, "recipients")
    post_step(sender_client, "recipients", recipients_data([(key(world.fr), 0, 1)]))
    response = parameters_page(sender_client)

    assert response.context["form"]["reason"].value() == "Half typed"
    assert not response.context["form"].errors  # not shown as a failed page


def test_an_automatic_language_follows_the_new_recipients(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 0, 1)])

    previous(
        sender_client,
        "parameters",
        parameters_data(language="fr", reason="Typed"),
        "recipients",
    )
    post_step(sender_client, "recipients", recipients_data([(key(world.nl), 0, 1)]))
    form = parameters_page(sender_client).context["form"]

    assert form["language"].value() == "nl"
    assert form["reason"].value() == "Typed"


# -- item 3: sticky options where they were offered ---------------------------------


def test_an_option_forced_off_is_not_remembered(sender_client, world):
    SenderPreferences.objects.create(
        user=world.sender, require_otp=True, send_mail=True
    )
    # No mobile: two-factor cannot be ticked for this recipient.
    run_until_parameters(sender_client, world.studies, [(key(world.no_mobile), 0, 1)])
    post_step(sender_client, "parameters", parameters_data())

    start(sender_client, world.studies)
    post_step(sender_client, "studies", studies_data(world.studies))
    form = sender_client.get(step_url("recipients")).context["form"]

    preferences = SenderPreferences.objects.get(user=world.sender)
    assert (preferences.require_otp, preferences.send_mail) == (True, True)
    assert form.empty_form["require_otp"].value() is True
    assert form.empty_form["send_mail"].value() is True


def test_an_option_the_sender_turned_off_is_remembered(sender_client, world):
    SenderPreferences.objects.create(
        user=world.sender, require_otp=True, send_mail=True
    )
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 0, 0)])
    post_step(sender_client, "parameters", parameters_data())

    preferences = SenderPreferences.objects.get(user=world.sender)
    assert (preferences.require_otp, preferences.send_mail) == (False, False)


# -- item 4: the language counts every recipient -------------------------------------


@pytest.fixture
def dutch_gps(world):
    group = UserGroupFactory(name="GP practice Gent")
    group.members.add(
        *(UserFactory(username=f"gp-{n}", language="nl") for n in range(3))
    )
    return group


@pytest.fixture
def liege(world):
    department = DepartmentFactory(code="liege", name="CHU Liège", language="fr")
    Membership.objects.create(
        user=UserFactory(username="liege-1", language="fr"), department=department
    )
    return department


def test_groups_and_departments_count_for_the_language(
    sender_client, world, dutch_gps, liege
):
    rows = [(key(dutch_gps), 0, 1), (key(liege), 0, 1), (key(world.de), 0, 1)]
    run_until_parameters(sender_client, world.studies, rows)

    page = parameters_page(sender_client)
    post_step(sender_client, "parameters", parameters_data(language=None))

    assert page.context["form"]["language"].value() == "nl"
    assert "Language of the first recipient." in page.content.decode()


def test_the_page_says_most_recipients_and_how_many(sender_client, world, liege):
    french_group = UserGroupFactory(name="Cabinet Namur")
    french_group.members.add(
        UserFactory(username="namur-1", language="fr"),
        UserFactory(username="namur-2", language="fr"),
        UserFactory(username="namur-3", language="nl"),
    )
    rows = [(key(world.nl), 0, 1), (key(french_group), 0, 1), (key(liege), 0, 1)]
    run_until_parameters(sender_client, world.studies, rows)

    page = parameters_page(sender_client)

    assert page.context["form"]["language"].value() == "fr"
    assert "Language of most recipients, 2 of 3." in page.content.decode()


def test_a_tie_in_a_group_takes_the_first_members_language(sender_client, world):
    group = UserGroupFactory(name="Mixed practice")
    group.members.add(UserFactory(username="mixed-de", language="de"))
    group.members.add(UserFactory(username="mixed-fr", language="fr"))
    run_until_parameters(sender_client, world.studies, [(key(group), 0, 1)])

    assert parameters_page(sender_client).context["form"]["language"].value() == "de"


def test_the_department_language_is_editable_in_admin(client, liege):
    client.force_login(UserFactory(username="desk", is_staff=True, is_superuser=True))

    page = client.get(reverse("admin:recipients_department_change", args=[liege.pk]))

    assert 'name="language"' in page.content.decode()


# -- item 5: validity -----------------------------------------------------------------


def test_a_department_maximum_never_offers_nor_accepts_unlimited(client):
    world = make_world(max_validity_days=14)
    client.force_login(world.sender)
    run_until_parameters(client, world.studies, [(key(world.fr), 0, 1)])

    page = parameters_page(client)
    response = post_step(
        client, "parameters", parameters_data(unlimited="on", valid_until="")
    )

    assert "unlimited" not in page.context["form"].fields
    assert 'name="parameters-unlimited"' not in page.content.decode()
    assert response.status_code == 200
    assert "Unlimited access is not allowed" in response.content.decode()
    assert nothing_created()


def test_a_day_that_does_not_exist_is_refused_as_such(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 0, 1)])

    response = post_step(
        sender_client, "parameters", parameters_data(valid_until="31/02/2027")
    )

    errors = response.context["form"].errors["valid_until"]
    assert errors == ["The date 31/02/2027 does not exist."]
    assert nothing_created()


def test_with_unlimited_ticked_no_date_is_shown(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 0, 1)])

    response = post_step(
        sender_client,
        "parameters",
        parameters_data(unlimited="on", valid_until=in_days(7), reason=""),
    )

    field = response.context["form"]["valid_until"]
    rendered = str(field)
    assert "disabled" in rendered
    assert in_days(7) not in rendered
    assert nothing_created()


# -- item 7: group recipients and mail --------------------------------------------


@pytest.fixture
def half_mailed_group(world):
    group = UserGroupFactory(name="Surgery team")
    group.members.add(
        UserFactory(username="mailed", first_name="Ann", last_name="Mailed"),
        UserFactory(
            username="unmailed", first_name="Bob", last_name="Nomail", email=""
        ),
    )
    return group


def test_a_group_mails_every_member_with_an_address(
    sender_client, world, half_mailed_group
):
    run_until_parameters(sender_client, world.studies, [(key(half_mailed_group), 0, 1)])
    page = parameters_page(sender_client).content.decode()

    post_step(sender_client, "parameters", parameters_data(access="read"))
    share, done = share_done_page(sender_client)

    assert "Bob Nomail" in page and "no e-mail address" in page
    bucket = share.buckets.get()
    assert bucket.send_mail
    mailed = Notification.objects.filter(bucket=bucket, channel="email")
    assert [n.user.username for n in mailed] == ["mailed"]
    shown = done.content.decode()
    assert "Not mailed (no e-mail address): Bob Nomail" in shown
    assert "Not mailed (no e-mail address): Bob Nomail" in done.context["info_text"]


def test_a_group_where_nobody_has_an_address_cannot_have_mail(sender_client, world):
    group = UserGroupFactory(name="Paper only")
    group.members.add(UserFactory(username="paper", email=""))
    start(sender_client, world.studies)
    post_step(sender_client, "studies", studies_data(world.studies))

    response = post_step(
        sender_client, "recipients", recipients_data([(key(group), 0, 1)])
    )

    assert response.status_code == 200
    assert response.context["form"].forms[0].errors["send_mail"]


# -- item 8: anonymize says what it does ------------------------------------------


def test_anonymize_says_what_it_does_and_the_pop_up_as_the_recipient_sees_it(
    sender_client, world
):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 0, 1)])
    page = html.unescape(parameters_page(sender_client).content.decode())

    post_step(
        sender_client, "parameters", parameters_data(access="write", anonymize="on")
    )
    _, done = share_done_page(sender_client)

    assert "The first name is replaced by a number" in page
    assert "the last name by “Anonymous”" in page
    assert "The report is never accessible" in page
    shown = html.unescape(done.content.decode())
    expected = "Images only (anonymized: the report is not available)"
    assert expected in shown
    assert f"Access: {expected}" in done.context["info_text"]
    assert "write access to the report" not in shown
