"""Arbitrary input to every wizard step and to the quick search: never a server
error, and never a share that breaks a rule."""

import datetime

from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from sharing.models import ACCESS_RANK, Access, Share
from sharing.wizard import policy
from tests.factories import build_wizard_world as make_world
from tests.sharing.wizard_support import (
    MANAGEMENT,
    key,
    parameters_data,
    recipients_data,
    start,
    step_url,
    studies_data,
)

# derandomize: every run tries the same inputs, so a failure shows on every run.
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FIELDS = {
    "studies": ["studies-studies"],
    "recipients": [
        "recipients-TOTAL_FORMS",
        "recipients-INITIAL_FORMS",
        "recipients-MIN_NUM_FORMS",
        "recipients-MAX_NUM_FORMS",
        *[
            f"recipients-{i}-{name}"
            for i in range(4)
            for name in ("key", "require_otp", "send_mail", "star")
        ],
    ],
    "parameters": [
        f"parameters-{name}"
        for name in (
            "access",
            "reason",
            "language",
            "valid_until",
            "unlimited",
            "patient_agreed",
            "add_label",
            "label",
            "label_scope",
            "urgent",
            "anonymize",
            "allow_further_sharing",
            "message",
        )
    ],
}


class Of:
    """A value of the test's world, drawn before the world exists: ``Of("fr")``."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Of({self.name!r})"

    def value(self, world):
        if self.name == "fr":
            return key(world.fr)
        if self.name == "no_mobile":
            return key(world.no_mobile)
        if self.name == "foreign_study":
            return str(world.foreign_study.pk)
        return str(world.studies[int(self.name.removeprefix("study"))].pk)


def _resolved(world, data):
    return {
        name: [v.value(world) if isinstance(v, Of) else v for v in values]
        if isinstance(values, list)
        else values
        for name, values in data.items()
    }


def _values():
    plausible = [
        "",
        "on",
        "0",
        "1",
        "-1",
        "3",
        "1000",
        "99999999999999999999",
        "read",
        "write",
        "images",
        "en",
        "nl",
        "user",
        "group",
        "31/02/2025",
        "01/01/1900",
        "29/02/2024",
        (datetime.date.today() + datetime.timedelta(3)).strftime("%d/%m/%Y"),
        "x" * 2100,
        Of("fr"),
        Of("no_mobile"),
        "user:0",
        "department:1",
        Of("study0"),
        Of("study1"),
        Of("foreign_study"),
    ]
    return st.one_of(st.sampled_from(plausible), st.text(max_size=40))


def _payloads(step):
    names = st.one_of(st.sampled_from(FIELDS[step]), st.text(max_size=20))
    management = st.one_of(
        st.just(step),
        st.sampled_from(["studies", "recipients", "parameters", "done", ""]),
        st.text(max_size=12),
    )
    return st.tuples(
        management,
        st.dictionaries(names, st.lists(_values(), min_size=1, max_size=3)),
    )


class WizardFuzzTest(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.world = make_world()

    def _client(self, upto):
        """Return a logged-in client with the steps before `upto` done validly."""
        client = Client()
        client.force_login(self.world.sender)
        start(client, self.world.studies)
        steps = ["studies", "recipients", "parameters"]
        valid = {
            "studies": studies_data(self.world.studies),
            "recipients": recipients_data([(key(self.world.fr), 1, 1)]),
        }
        for step in steps[: steps.index(upto)]:
            payload = {MANAGEMENT: step}
            for name, value in valid[step].items():
                payload[name if name.startswith(f"{step}-") else f"{step}-{name}"] = (
                    value
                )
            response = client.post(step_url(step), payload)
            assert response.status_code == 302, response.context["form"].errors
        return client

    def _assert_no_rule_broken(self):
        department = self.world.department
        for share in Share.objects.all():
            buckets = list(share.buckets.all())
            assert share.reason.strip()
            assert share.patient_agreed_at is not None
            assert 1 <= len(buckets) <= department.max_recipients
            assert len(share.message) <= 2000
            if share.valid_until is None:
                assert department.allow_unlimited
            else:
                assert share.valid_until >= policy.department_today(department)
            if share.access == Access.IMAGES_ONLY:
                assert not any(b.recipient_user_id for b in buckets)
            assert ACCESS_RANK[Access(share.access)] >= 0
            assert {s.department_id for s in share.studies.all()} == {department.pk}
            for bucket in buckets:
                recipient = bucket.recipient
                if bucket.require_otp and hasattr(recipient, "mobile"):
                    assert recipient.mobile
                if bucket.send_mail and hasattr(recipient, "email"):
                    assert recipient.email

    def _post(self, step, management, data):
        client = self._client(step)
        payload = _resolved(self.world, data)
        payload[MANAGEMENT] = management
        response = client.post(step_url(step), payload)
        assert response.status_code < 500, response.status_code
        self._assert_no_rule_broken()

    @FUZZ
    @given(posted=_payloads("studies"))
    # A study id beyond the database's integer range is a form error, not a 500.
    @example(posted=("studies", {"studies-studies": ["99999999999999999999"]}))
    def test_it_survives_arbitrary_studies_input(self, posted):
        management, payload = posted
        self._post("studies", management, payload)
        assert not Share.objects.exists()

    @FUZZ
    @given(posted=_payloads("recipients"))
    def test_it_survives_arbitrary_recipients_input(self, posted):
        management, payload = posted
        self._post("recipients", management, payload)
        assert not Share.objects.exists()

    @FUZZ
    @given(posted=_payloads("parameters"))
    def test_it_survives_arbitrary_parameters_input(self, posted):
        management, payload = posted
        self._post("parameters", management, payload)

    @FUZZ
    @given(
        spoiled=st.dictionaries(
            st.sampled_from(FIELDS["parameters"]), _values(), max_size=4
        )
    )
    def test_it_survives_arbitrary_parameters_mixed_into_valid_ones(self, spoiled):
        # Start from a valid step and spoil some fields, so the rules are reached.
        valid = {f"parameters-{k}": v for k, v in parameters_data().items()}
        spoiled = {name: [value] for name, value in spoiled.items()}
        self._post("parameters", "parameters", {**valid, **spoiled})

    @FUZZ
    @given(studies=st.lists(st.text(max_size=25), max_size=5))
    def test_it_survives_arbitrary_study_ids_at_the_start(self, studies):
        client = Client()
        client.force_login(self.world.sender)
        response = client.get(reverse("sharing:share_start"), {"studies": studies})
        assert response.status_code == 302
        assert client.get(response.url).status_code < 500

    @FUZZ
    @given(query=st.text(max_size=120))
    def test_it_survives_arbitrary_quick_search_input(self, query):
        url = reverse("recipients:quick_search")
        client = Client()
        client.force_login(self.world.sender)
        response = client.get(url, {"q": query})
        assert response.status_code < 500
