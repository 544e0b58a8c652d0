"""Rule 7 (mail language) and rule 8 (validity) through the wizard and its policy."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone

from sharing.models import Share
from sharing.wizard import policy
from tests.factories import UserFactory
from tests.sharing.wizard_support import (
    key,
    parameters_data,
    post_step,
    run_until_parameters,
    step_url,
)

BRUSSELS = zoneinfo.ZoneInfo("Europe/Brussels")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def _at(moment, monkeypatch):
    monkeypatch.setattr(policy, "_now", lambda: moment)


# -- Rule 7 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("languages", "expected"),
    [
        (["fr", "nl", "nl"], "nl"),
        (["fr", "nl", "de"], "fr"),
        (["nl", "fr"], "nl"),
        (["de"], "de"),
        (["en", "fr", "fr", "en"], "en"),
        (["en", "fr", "fr", "fr"], "fr"),
    ],
)
def test_it_picks_the_strict_majority_else_the_first_language(languages, expected):
    assert policy.mail_language(languages) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("languages", "expected"),
    [(["fr", "nl", "nl"], "nl"), (["fr", "nl", "de"], "fr"), (["nl", "fr"], "nl")],
)
def test_it_preselects_the_mail_language_in_the_wizard(
    sender_client, world, languages, expected
):
    world.department.max_recipients = 3
    world.department.save()
    recipients = [UserFactory(language=language) for language in languages]
    run_until_parameters(
        sender_client, world.studies, [(key(user), 1, 1) for user in recipients]
    )

    form = sender_client.get(step_url("parameters")).context["form"]

    assert form["language"].value() == expected


@pytest.mark.django_db
def test_it_lets_the_sender_change_the_mail_language(sender_client, world):
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])

    post_step(sender_client, "parameters", parameters_data(language="de"))

    assert Share.objects.get().language == "de"


# -- Rule 8: the default -------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (datetime.date(2025, 1, 31), datetime.date(2025, 2, 28)),
        (datetime.date(2024, 1, 31), datetime.date(2024, 2, 29)),
        (datetime.date(2025, 3, 31), datetime.date(2025, 4, 30)),
        (datetime.date(2025, 12, 15), datetime.date(2026, 1, 15)),
        (datetime.date(2025, 12, 31), datetime.date(2026, 1, 31)),
    ],
)
def test_it_adds_one_calendar_month(today, expected):
    assert policy.add_calendar_month(today) == expected


@pytest.mark.django_db
def test_it_defaults_to_one_calendar_month_31_january_to_end_of_february(
    sender_client, world, monkeypatch
):
    _at(datetime.datetime(2025, 1, 31, 10, 0, tzinfo=BRUSSELS), monkeypatch)
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])

    page = sender_client.get(step_url("parameters"))

    assert page.context["form"]["valid_until"].value() == datetime.date(2025, 2, 28)
    assert 'value="28/02/2025"' in page.content.decode()


@pytest.mark.django_db
def test_it_defaults_to_the_departments_number_of_days(
    sender_client, world, monkeypatch
):
    world.department.default_validity_days = 14
    world.department.save()
    _at(datetime.datetime(2025, 1, 31, 10, 0, tzinfo=BRUSSELS), monkeypatch)
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])

    form = sender_client.get(step_url("parameters")).context["form"]

    assert form["valid_until"].value() == datetime.date(2025, 2, 14)


@pytest.mark.django_db
def test_it_never_defaults_beyond_the_maximum(sender_client, world, monkeypatch):
    world.department.max_validity_days = 7
    world.department.save()
    _at(datetime.datetime(2025, 1, 31, 10, 0, tzinfo=BRUSSELS), monkeypatch)
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])

    form = sender_client.get(step_url("parameters")).context["form"]

    assert form["valid_until"].value() == datetime.date(2025, 2, 7)


# -- Rule 8: today and the end of the day in the department's zone --------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone", "accepted"), [("Europe/Brussels", False), ("America/New_York", True)]
)
def test_it_judges_a_past_date_in_the_departments_zone(
    sender_client, world, monkeypatch, zone, accepted
):
    world.department.time_zone = zone
    world.department.save()
    # 23:30 UTC on 1 March: already 2 March in Brussels, still 1 March in New York.
    _at(datetime.datetime(2025, 3, 1, 23, 30, tzinfo=datetime.UTC), monkeypatch)
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])

    response = post_step(
        sender_client, "parameters", parameters_data(valid_until="01/03/2025")
    )

    assert (response.status_code == 302) is accepted
    assert Share.objects.exists() is accepted


@pytest.mark.django_db
def test_it_ends_access_at_midnight_at_the_end_of_the_day_in_the_departments_zone(
    sender_client, world, monkeypatch
):
    world.department.time_zone = "America/New_York"
    world.department.save()
    run_until_parameters(sender_client, world.studies, [(key(world.fr), 1, 1)])
    last_day = timezone.localdate() + datetime.timedelta(days=5)
    post_step(
        sender_client,
        "parameters",
        parameters_data(valid_until=last_day.strftime("%d/%m/%Y")),
    )
    share = Share.objects.get()
    bucket = share.buckets.get()

    assert share.valid_until == last_day
    end = datetime.datetime.combine(
        last_day + datetime.timedelta(days=1), datetime.time.min, tzinfo=NEW_YORK
    )
    assert share.expires_at == end
    monkeypatch.setattr(timezone, "now", lambda: end - datetime.timedelta(seconds=1))
    assert not bucket.is_expired
    monkeypatch.setattr(timezone, "now", lambda: end)
    assert bucket.is_expired
