"""The message SR names its sender from the user's name fields, never by splitting."""

import pytest

from studies.message_sr import message_sr_build
from tests.factories import StudyFactory, UserFactory


def _observer_name(ds):
    (observer,) = [item for item in ds.ContentSequence if item.ValueType == "PNAME"]
    return observer.PersonName


@pytest.mark.django_db
def test_it_puts_the_family_name_first_whatever_its_spaces():
    sender = UserFactory(title="Dr.", first_name="An", last_name="De Smet")

    ds = message_sr_build(study=StudyFactory(), text="Compare.", sender=sender)

    name = _observer_name(ds)
    assert name.family_name == "De Smet"
    assert name.given_name == "An"
    assert name.name_prefix == "Dr."


@pytest.mark.django_db
def test_a_line_break_or_delimiter_in_a_name_forges_no_component():
    sender = UserFactory(
        title="Prof\r\n",
        first_name="Jan\nEvil^Forged^Middle",
        last_name="Peeters=Ideographic\\Second",
    )

    ds = message_sr_build(study=StudyFactory(), text="Compare.", sender=sender)

    name = _observer_name(ds)
    assert name.family_name == "Peeters Ideographic Second"
    assert name.given_name == "Jan Evil Forged Middle"
    assert name.middle_name == ""
    assert name.name_prefix == "Prof"
    assert name.ideographic == "" and name.phonetic == ""
    assert not any(ch in str(name) for ch in "\r\n\\=")


@pytest.mark.django_db
def test_a_user_without_names_is_named_by_the_username():
    sender = UserFactory(title="", first_name="", last_name="", username="dr^who")

    ds = message_sr_build(study=StudyFactory(), text="Compare.", sender=sender)

    assert str(_observer_name(ds)) == "dr who"
