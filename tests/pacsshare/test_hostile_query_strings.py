"""No query string reaches a 500: every list filter and search parameter, in the
Django admin and in the app, answers hostile values with 200 or 400.

Run on PostgreSQL too (DATABASE_URL): a NUL character or an out-of-range
number fails there where SQLite lets it pass.
"""

from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from recipients.models import Membership
from tests.factories import SeriesFactory
from tests.factories import build_admin_world as build_world

pytestmark = pytest.mark.django_db

# One of each kind: not a number, beyond any integer column, negative, out of
# any calendar. NUL has its own, cheaper test: the middleware refuses it first.
HOSTILE = ["abc", "9" * 30, "-1", "2024-13-45"]
NUL = ["\x00", "1\x00"]
ADMIN_PARAMETERS = ["q", "o", "p", "_facets", "_to_field", "_popup", "e"]


@pytest.fixture
def world():
    world = build_world()
    study = world.bucket_a.share.studies.get()
    world.series = SeriesFactory(study=study)
    world.study = study
    return world


def _admin_parameters(model, model_admin, user):
    request = RequestFactory().get("/")
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    names = set(ADMIN_PARAMETERS)
    for spec in changelist.filter_specs:
        names.update(spec.expected_parameters())
    if model_admin.date_hierarchy:
        field = model_admin.date_hierarchy
        names.update(f"{field}__{part}" for part in ("year", "month", "day"))
    return sorted(names)


def _answer(client, url, params):
    """Return the final status, following the admin's "bad lookup" redirect only."""
    response = client.get(url + "?" + urlencode(params))
    if response.status_code == 302 and response["Location"].endswith("?e=1"):
        response = client.get(response["Location"])
    return response.status_code


def _walk(client, url, names):
    # A page that redirects when asked plainly (the wizard's start) may do so.
    allowed = {200, 400, client.get(url).status_code} - {500}
    bad = []
    for name in names:
        for value in HOSTILE:
            status = _answer(client, url, {name: value})
            if status not in allowed:
                bad.append((url, name, value[:20], status))
    return bad


def _changelists(client):
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        if client.get(url).status_code == 200:
            yield model, model_admin, url


def test_it_answers_hostile_admin_filters_and_searches_without_a_500(client, world):
    # The service desk sees every filter of every model.
    client.force_login(world.desk)
    bad = []

    for model, model_admin, url in _changelists(client):
        bad += _walk(client, url, _admin_parameters(model, model_admin, world.desk))

    assert bad == []


def test_it_answers_a_department_admins_hostile_department_filter(client, world):
    client.force_login(world.admin_a)
    bad = []

    for _model, _model_admin, url in _changelists(client):
        bad += _walk(client, url, ["department"])

    assert bad == []


def test_it_refuses_a_nul_character_anywhere_in_the_query_string(client, world):
    client.force_login(world.desk)
    urls = [url for _m, _a, url in _changelists(client)] + list(_app_pages(world))

    answers = {
        (url, value): client.get(url + "?" + urlencode({"q": value})).status_code
        for url in urls
        for value in NUL
    }
    named = client.get(reverse("studies:overview") + "?pati%00ent=1").status_code

    assert set(answers.values()) == {400}, answers
    assert named == 400


def test_it_refuses_a_department_the_admin_does_not_administer(client, world):
    client.force_login(world.admin_a)
    url = reverse("admin:sharing_bucket_changelist")

    theirs = _answer(client, url, {"department": world.dept_b.pk})
    own = client.get(url, {"department": world.dept_a.pk})

    assert theirs == 200  # Django's "bad parameters" page, not B's buckets
    assert [b.pk for b in own.context["cl"].result_list] == [world.bucket_a.pk]


def _app_pages(world):
    study, series = world.study, world.series
    return {
        reverse("studies:overview"): [
            "patient",
            "date_from",
            "date_to",
            "modality",
            "description",
            "page",
        ],
        reverse("studies:study", args=[study.pk]): ["wc", "ww", "preset"],
        reverse("studies:series", args=[study.pk, series.pk]): [
            "wc",
            "ww",
            "preset",
            "page",
            "frame",
        ],
        reverse("sharing:status_forwarding"): [
            "q",
            "status",
            "department",
            "sender",
            "shared_from",
            "shared_to",
            "page",
        ],
        reverse("sharing:audit_export"): ["department", "date_from", "date_to"],
        reverse("recipients:quick_search"): ["q", "mode"],
        reverse("recipients:detailed_search"): [
            "kind",
            "first_name",
            "last_name",
            "scheme",
            "number",
            "name",
            "place",
            "department",
            "page",
        ],
        reverse("recipients:favorites"): ["q", "page"],
        reverse("recipients:favorites_fragment"): ["q", "page", "mode"],
        reverse("sharing:shared_with_me"): ["page"],
        reverse("sharing:share_start"): ["studies"],
    }


def test_it_answers_hostile_app_filters_and_searches_without_a_500(client, world):
    # An admin of the department who is also its member: every filter shows.
    Membership.objects.filter(user=world.admin_a).update(is_admin=True)
    client.force_login(world.admin_a)
    bad = []

    for url, names in _app_pages(world).items():
        bad += _walk(client, url, names)
        # Repeated and empty parameters too.
        status = client.get(url + "?" + "&".join(f"{n}=1&{n}=" for n in names))
        if status.status_code not in (200, 302, 400):
            bad.append((url, "repeated", "", status.status_code))

    assert bad == []


@pytest.mark.postgres
def test_it_answers_hostile_values_on_postgresql(client, world):
    client.force_login(world.desk)

    bad = _walk(
        client, reverse("admin:studies_patient_changelist"), ["q", "department"]
    )
    bad += _walk(client, reverse("sharing:status_forwarding"), ["q", "department"])
    bad += _walk(client, reverse("recipients:quick_search"), ["q"])

    assert bad == []
