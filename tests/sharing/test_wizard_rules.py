"""Every rule of the wizard, checked on the server: accepted and refused cases.

A refusal shows an error at the field and creates nothing (item 8).
"""

import pytest

from recipients.models import Membership
from sharing.models import Label, Share
from tests.factories import (
    DepartmentFactory,
    PatientFactory,
    StudyFactory,
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
    run_until_parameters,
    start,
    step_url,
    studies_data,
)

pytestmark = pytest.mark.django_db


def _field_errors(response, name):
    return [str(e) for e in response.context["form"].errors.get(name, [])]


# -- Rule 1: studies ------------------------------------------------------------


def test_it_refuses_a_forged_study_id(sender_client, world):
    start(sender_client, world.studies)

    response = post_step(sender_client, "studies", {"studies": ["999999"]})

    assert response.status_code == 200
    assert _field_errors(response, "studies") == [
        "You may not share one of these studies."
    ]
    assert nothing_created()


def test_it_refuses_a_study_of_another_department(sender_client, world):
    start(sender_client, [world.foreign_study])

    response = post_step(
        sender_client, "studies", studies_data([world.studies[0], world.foreign_study])
    )

    assert response.status_code == 200
    assert _field_errors(response, "studies")
    assert world.foreign_study.patient.family_name not in response.content.decode()


def test_it_refuses_studies_from_two_source_departments(sender_client, world):
    Membership.objects.create(user=world.sender, department=world.other_department)
    chosen = [world.studies[0], world.foreign_study]
    start(sender_client, chosen)

    response = post_step(sender_client, "studies", studies_data(chosen))

    assert _field_errors(response, "studies") == [
        "Share studies of one source department at a time."
    ]


def test_it_refuses_no_study_at_all(sender_client, world):
    start(sender_client, [])

    response = post_step(sender_client, "studies", {})

    assert _field_errors(response, "studies") == ["Select at least one study to share."]


def test_it_lists_only_the_preselected_studies_it_may_share(sender_client, world):
    response = start(sender_client, [world.studies[0], world.foreign_study])

    page = sender_client.get(response.url).content.decode()

    assert "CT thorax" in page
    assert "Foreign" not in page


# -- Rules 2 and 3: recipients ------------------------------------------------------


def _recipients_step(client, world, rows):
    start(client, world.studies)
    post_step(client, "studies", studies_data(world.studies))
    return post_step(client, "recipients", recipients_data(rows))


def test_it_accepts_up_to_the_departments_maximum(sender_client, world):
    world.department.max_recipients = 2
    world.department.save()

    response = _recipients_step(
        sender_client, world, [(key(world.fr), 1, 1), (key(world.nl), 1, 1)]
    )

    assert response.status_code == 302


def test_it_refuses_more_recipients_than_the_maximum(sender_client, world):
    world.department.max_recipients = 2
    world.department.save()
    rows = [(key(world.fr), 1, 1), (key(world.nl), 1, 1), (key(world.de), 1, 1)]

    response = _recipients_step(sender_client, world, rows)

    assert response.status_code == 200
    assert list(response.context["form"].non_form_errors()) == [
        "You can share with at most 2 recipients at a time."
    ]


def test_it_refuses_no_recipient(sender_client, world):
    response = _recipients_step(sender_client, world, [("", 1, 1)])

    assert list(response.context["form"].non_form_errors()) == [
        "Choose at least one recipient."
    ]


def test_it_refuses_the_same_recipient_twice(sender_client, world):
    response = _recipients_step(
        sender_client, world, [(key(world.fr), 1, 1), (key(world.fr), 0, 0)]
    )

    assert list(response.context["form"].non_form_errors()) == [
        "A recipient is chosen twice."
    ]


@pytest.mark.parametrize("forged", ["user:999999", "user:abc", "nobody", "user:-1"])
def test_it_refuses_a_forged_recipient_key(sender_client, world, forged):
    response = _recipients_step(sender_client, world, [(forged, 0, 0)])

    assert response.context["form"].forms[0].errors["key"] == [
        "This recipient is unknown."
    ]


def test_it_refuses_an_inactive_user_as_recipient(sender_client, world):
    world.fr.is_active = False
    world.fr.save()

    response = _recipients_step(sender_client, world, [(key(world.fr), 0, 0)])

    assert response.context["form"].forms[0].errors["key"]


def test_it_refuses_two_factor_for_a_recipient_without_a_mobile(sender_client, world):
    response = _recipients_step(sender_client, world, [(key(world.no_mobile), 1, 1)])

    errors = response.context["form"].forms[0].errors
    assert list(errors) == ["require_otp"]
    assert "no registered mobile number" in errors["require_otp"][0]


def test_it_accepts_a_recipient_without_a_mobile_when_two_factor_is_off(
    sender_client, world
):
    response = _recipients_step(sender_client, world, [(key(world.no_mobile), 0, 1)])

    assert response.status_code == 302


def test_it_refuses_send_mail_for_a_recipient_without_an_e_mail(sender_client, world):
    response = _recipients_step(sender_client, world, [(key(world.no_email), 1, 1)])

    errors = response.context["form"].forms[0].errors
    assert list(errors) == ["send_mail"]
    assert "no e-mail address" in errors["send_mail"][0]


def test_it_refuses_a_mangled_management_form(sender_client, world):
    start(sender_client, world.studies)
    post_step(sender_client, "studies", studies_data(world.studies))

    response = post_step(
        sender_client, "recipients", {"recipients-0-key": key(world.fr)}
    )

    assert response.status_code == 200
    assert nothing_created()


# -- Rules 5 to 11 and 14: parameters -------------------------------------------------


@pytest.fixture
def at_parameters(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])
    return sender_client


REFUSED = [
    ("images only with a user", {"access": "images"}, "access"),
    ("unknown access", {"access": "admin"}, "access"),
    ("no reason", {"reason": ""}, "reason"),
    ("blank reason", {"reason": "   "}, "reason"),
    ("past date", {"valid_until": in_days(-1)}, "valid_until"),
    ("malformed date", {"valid_until": "2030-01-31"}, "valid_until"),
    ("impossible date", {"valid_until": "31/02/2030"}, "valid_until"),
    ("no date", {"valid_until": ""}, "valid_until"),
    ("patient did not agree", {"patient_agreed": None}, "patient_agreed"),
    ("message too long", {"message": "x" * 2001}, "message"),
    ("unknown language", {"language": "xx"}, "language"),
]


@pytest.mark.parametrize(
    ("case", "overrides", "field"), REFUSED, ids=[c[0] for c in REFUSED]
)
def test_it_refuses_an_invalid_parameter_at_its_field(
    at_parameters, case, overrides, field
):
    response = post_step(at_parameters, "parameters", parameters_data(**overrides))

    assert response.status_code == 200
    assert _field_errors(response, field), case
    assert nothing_created()


def test_it_says_why_images_only_is_refused_for_a_user(at_parameters):
    response = post_step(at_parameters, "parameters", parameters_data(access="images"))

    assert _field_errors(response, "access") == [
        "'Images only' is not available when sharing with a user."
    ]
    assert "Images only" not in str(response.context["form"]["access"])


def test_it_offers_and_accepts_images_only_for_a_group(sender_client, world):
    group = UserGroupFactory(is_public=True)
    group.members.add(world.fr, world.nl)
    run_until_parameters(sender_client, world.studies, [(key(group), 1, 1)])

    page = sender_client.get(step_url("parameters"))
    response = post_step(sender_client, "parameters", parameters_data(access="images"))

    assert "Images only" in page.content.decode()
    assert response.status_code == 302
    share = Share.objects.get()
    assert share.access == "images"
    assert share.buckets.get().recipient_group == group


def test_it_accepts_a_message_of_the_maximum_length(at_parameters):
    response = post_step(
        at_parameters, "parameters", parameters_data(message="x" * 2000)
    )

    assert response.status_code == 302
    assert len(Share.objects.get().message) == 2000


def test_it_accepts_today_as_the_last_day(at_parameters):
    response = post_step(
        at_parameters, "parameters", parameters_data(valid_until=in_days(0))
    )

    assert response.status_code == 302


def test_it_refuses_a_date_beyond_the_departments_maximum(sender_client, world):
    world.department.max_validity_days = 10
    world.department.save()
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])

    refused = post_step(
        sender_client, "parameters", parameters_data(valid_until=in_days(11))
    )
    accepted = post_step(
        sender_client, "parameters", parameters_data(valid_until=in_days(10))
    )

    assert refused.status_code == 200
    assert _field_errors(refused, "valid_until") == [
        f"The latest possible date is {in_days(10)}."
    ]
    assert accepted.status_code == 302


def test_it_refuses_unlimited_where_the_department_does_not_allow_it(
    sender_client, world
):
    world.department.allow_unlimited = False
    world.department.save()
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])

    page = sender_client.get(step_url("parameters")).content.decode()
    response = post_step(
        sender_client, "parameters", parameters_data(valid_until="", unlimited="on")
    )

    assert "Unlimited access" not in page
    assert _field_errors(response, "valid_until") == [
        "Unlimited access is not allowed for these studies."
    ]
    assert nothing_created()


def test_it_accepts_unlimited_where_allowed(at_parameters):
    response = post_step(
        at_parameters, "parameters", parameters_data(valid_until="", unlimited="on")
    )

    assert response.status_code == 302
    assert Share.objects.get().valid_until is None


def test_it_stores_a_label_of_the_department_for_a_group(sender_client, world):
    label = Label.objects.create(department=world.department, name="Oncology")
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])

    response = post_step(
        sender_client,
        "parameters",
        parameters_data(add_label="on", label=str(label.pk), label_scope="group"),
    )

    assert response.status_code == 302
    share = Share.objects.get()
    assert (share.label, share.label_scope) == (label, "group")


def test_it_refuses_a_label_of_another_department(sender_client, world):
    Label.objects.create(department=world.department, name="Oncology")
    foreign = Label.objects.create(department=world.other_department, name="Foreign")
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])

    response = post_step(
        sender_client,
        "parameters",
        parameters_data(add_label="on", label=str(foreign.pk), label_scope="user"),
    )

    assert _field_errors(response, "label")
    assert nothing_created()


def test_it_ignores_the_label_when_add_label_is_off(sender_client, world):
    label = Label.objects.create(department=world.department, name="Oncology")
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])

    post_step(
        sender_client,
        "parameters",
        parameters_data(label=str(label.pk), label_scope="user"),
    )

    assert Share.objects.get().label is None


def test_it_stores_the_options(at_parameters):
    post_step(
        at_parameters,
        "parameters",
        parameters_data(urgent="on", allow_further_sharing="on", anonymize="on"),
    )

    share = Share.objects.get()
    assert (share.urgent, share.allow_further_sharing, share.anonymize) == (
        True,
        True,
        True,
    )


def test_it_never_shows_the_reason_to_the_recipient_side_of_the_mail(at_parameters):
    post_step(at_parameters, "parameters", parameters_data(reason="CONFIDENTIAL-7"))

    from sharing.models import Notification

    notification = Notification.objects.get()
    assert "CONFIDENTIAL-7" not in notification.subject


def test_it_refuses_studies_once_the_sender_left_the_department(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])
    Membership.objects.filter(user=world.sender).delete()

    response = post_step(sender_client, "parameters", parameters_data())

    assert response.status_code in (200, 302)
    assert nothing_created()


def test_it_lets_a_group_or_department_recipient_keep_the_senders_language(
    sender_client, world
):
    department = DepartmentFactory(is_public=True)
    UserFactory(departments=[department])
    run_until_parameters(sender_client, world.studies, [(key(department), 0, 1)])

    form = sender_client.get(step_url("parameters")).context["form"]

    assert form["language"].value() == world.sender.language


def test_it_accepts_another_departments_study_only_for_its_members(client, world):
    other_member = UserFactory(departments=[world.other_department])
    client.force_login(other_member)
    study = StudyFactory(patient=PatientFactory(department=world.other_department))

    run_until_parameters(client, [study], [(key(world.fr), 1, 1)])
    response = post_step(client, "parameters", parameters_data())

    assert response.status_code == 302
    assert Share.objects.get().source_department == world.other_department
