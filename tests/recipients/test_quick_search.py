"""Quick search: one box over users, public groups and public departments."""

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from recipients.folding import fold
from recipients.models import User
from recipients.selectors import directory_quick_search
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    PhysicianNumberFactory,
    UserFactory,
    UserGroupFactory,
)

pytestmark = pytest.mark.django_db


def names(entries):
    return [entry.name for entry in entries]


def keys(entries):
    return [entry.key for entry in entries]


def search(query, **kwargs):
    return directory_quick_search(query=query, **kwargs)


def test_it_needs_at_least_two_characters():
    UserFactory(first_name="Jan", last_name="Peeters")

    assert search("j") == []
    assert search(" j ") == []
    assert names(search("ja")) == ["Jan Peeters"]


def test_it_finds_first_name_last_name_and_full_name_in_either_order():
    jan = UserFactory(first_name="Jan", last_name="Peeters")
    UserFactory(first_name="Piet", last_name="Janssens")
    UserFactory(first_name="Marie", last_name="Dubois")

    assert jan.pk in [e.pk for e in search("Jan")]
    assert keys(search("peeters")) == [f"user:{jan.pk}"]
    assert keys(search("Jan Peeters")) == [f"user:{jan.pk}"]
    assert keys(search("peeters jan")) == [f"user:{jan.pk}"]
    assert keys(search("pee ja")) == [f"user:{jan.pk}"]
    assert search("Marie Peeters") == []


def test_it_finds_a_word_inside_a_multi_word_name():
    user = UserFactory(first_name="Anne-Sophie", last_name="Van den Berg")

    assert keys(search("sophie")) == [f"user:{user.pk}"]
    assert keys(search("berg")) == [f"user:{user.pk}"]
    assert keys(search("van den")) == [f"user:{user.pk}"]
    assert keys(search("anne berg")) == [f"user:{user.pk}"]


def test_it_ignores_case_and_accents_both_ways():
    noel = UserFactory(first_name="Noël", last_name="Lefèvre")
    muller = UserFactory(first_name="Jürgen", last_name="Müller")
    plain = UserFactory(first_name="Zoe", last_name="Muller")

    assert keys(search("noel")) == [f"user:{noel.pk}"]
    assert keys(search("NOËL")) == [f"user:{noel.pk}"]
    assert keys(search("lefevre")) == [f"user:{noel.pk}"]
    assert set(keys(search("muller"))) == {f"user:{muller.pk}", f"user:{plain.pk}"}
    assert set(keys(search("Müller"))) == {f"user:{muller.pk}", f"user:{plain.pk}"}
    assert keys(search("zoë")) == [f"user:{plain.pk}"]
    assert keys(search("jurgen muller")) == [f"user:{muller.pk}"]


def test_it_folds_letters_without_a_combining_accent():
    assert fold("Søren Ødegård") == "soren odegard"
    assert fold("Jean-Pierre D'Hondt") == "jean pierre dhondt"
    assert fold("Straße") == "strasse"


@pytest.mark.parametrize(
    "typed",
    [
        "1-23456-78-901",
        "12345678901",
        "1.23456.78.901",
        "1 23456 78 901",
        "RIZIV 1-23456-78-901",
        "riziv 12345678901",
        "RIZIV:1-23456-78-901",
        "INAMI 1-23456-78-901",
    ],
)
def test_it_finds_a_physician_number_typed_in_any_form(typed):
    user = UserFactory(first_name="Korneel", last_name="Maes")
    PhysicianNumberFactory(user=user, scheme="RIZIV", number="1-23456-78-901")

    assert keys(search(typed))[0] == f"user:{user.pk}"


def test_it_finds_numbers_of_every_scheme_and_respects_a_typed_scheme():
    riziv = UserFactory()
    big = UserFactory()
    PhysicianNumberFactory(user=riziv, scheme="RIZIV", number="1-11111-22-333")
    PhysicianNumberFactory(user=big, scheme="BIG", number="19 034 567 801")

    assert keys(search("19034567801")) == [f"user:{big.pk}"]
    assert keys(search("BIG 19034567801")) == [f"user:{big.pk}"]
    assert search("RIZIV 19034567801") == []
    assert keys(search("11111122333")) == [f"user:{riziv.pk}"]


def test_it_finds_a_public_mobile_in_national_and_international_form():
    user = UserFactory(mobile="+32475123456", mobile_public=True)

    for typed in (
        "+32475123456",
        "+32 475 12 34 56",
        "0475 12 34 56",
        "0475/12.34.56",
        "0032475123456",
    ):
        assert keys(search(typed)) == [f"user:{user.pk}"], typed


def test_it_never_matches_a_private_mobile():
    UserFactory(mobile="+32475123456", mobile_public=False)

    assert search("+32475123456") == []
    assert search("0475 12 34 56") == []


def test_it_finds_a_public_email_whatever_its_case():
    user = UserFactory(email="Marie.Dubois@Example.org", email_public=True)

    assert keys(search("marie.dubois@example.org")) == [f"user:{user.pk}"]
    assert keys(search("MARIE.DUBOIS@EXAMPLE.ORG")) == [f"user:{user.pk}"]


def test_it_never_matches_a_private_email():
    UserFactory(email="hidden@example.org", email_public=False)

    assert search("hidden@example.org") == []


def test_it_never_shows_inactive_users_by_any_rule():
    user = UserFactory(
        first_name="Gone",
        last_name="Away",
        is_active=False,
        mobile="+32475999888",
        mobile_public=True,
        email="gone@example.org",
        email_public=True,
    )
    PhysicianNumberFactory(user=user, number="1-99999-88-777")

    for typed in (
        "gone",
        "away",
        "gone away",
        "19999988777",
        "0475 99 98 88",
        "gone@example.org",
    ):
        assert search(typed) == [], typed


def test_it_ranks_exact_numbers_first_then_name_prefixes_then_the_rest():
    exact = UserFactory(first_name="Zeno", last_name="Zwart")
    longer = UserFactory(first_name="Adam", last_name="Aerts")
    PhysicianNumberFactory(user=exact, scheme="RIZIV", number="1-23456-78-901")
    PhysicianNumberFactory(user=longer, scheme="BIG", number="123456789012")

    assert keys(search("12345678901")) == [f"user:{exact.pk}", f"user:{longer.pk}"]

    inside = UserFactory(first_name="Anna", last_name="Goldberg")
    word = UserFactory(first_name="Ada", last_name="Van den Berg")
    prefix_last = UserFactory(first_name="Zoe", last_name="Bergmans")
    prefix_first = UserFactory(first_name="Berglind", last_name="Zwart")

    ranked = keys(search("berg"))

    # "berglind zwart" < "bergmans zoe": prefixes in name order, then the rest.
    assert ranked[:2] == [f"user:{prefix_first.pk}", f"user:{prefix_last.pk}"]
    assert set(ranked[2:]) == {f"user:{inside.pk}", f"user:{word.pk}"}


def test_it_ranks_a_public_email_or_mobile_match_first():
    user = UserFactory(email="ann.zwart@example.org", email_public=True)

    assert keys(search("ann.zwart@example.org")) == [f"user:{user.pk}"]


def test_it_returns_at_most_twenty_results():
    for _ in range(25):
        UserFactory(first_name="Lotte", last_name="Peeters")

    assert len(search("lotte")) == 20
    assert len(search("lotte", limit=50)) == 20
    assert len(search("lotte", limit=5)) == 5


def test_it_finds_public_groups_and_departments_but_not_private_ones():
    group = UserGroupFactory(name="Huisartsenpraktijk De Linde", is_public=True)
    UserGroupFactory(name="Linde private circle", is_public=False)
    department = DepartmentFactory(name="Radiologie Linde", code="rad-linde")
    DepartmentFactory(name="Linde hidden", code="hidden-linde", is_public=False)

    found = search("linde")

    assert set(keys(found)) == {f"group:{group.pk}", f"department:{department.pk}"}
    kinds = {entry.key: entry.kind for entry in found}
    assert kinds[f"group:{group.pk}"] == "group"
    assert kinds[f"department:{department.pk}"] == "department"


def test_it_ranks_a_group_name_prefix_before_a_word_inside_a_name():
    inside = UserGroupFactory(name="Praktijk Noord")
    prefix = UserGroupFactory(name="Noordpraktijk")

    assert keys(search("noord")) == [f"group:{prefix.pk}", f"group:{inside.pk}"]


def test_each_result_shows_what_a_sender_needs_and_no_private_contact():
    department = DepartmentFactory(name="Radiology UZ Leuven", code="uzl")
    user = UserFactory(
        title="Dr.",
        first_name="Hélène",
        last_name="Dupont",
        speciality="Cardiology",
        city="Namur",
        language="fr",
        mobile="+32475123456",
        mobile_public=False,
        email="helene.dupont@example.org",
        email_public=False,
    )
    MembershipFactory(user=user, department=department)
    PhysicianNumberFactory(user=user, scheme="RIZIV", number="1-23456-78-901")

    [entry] = search("helene")

    assert entry.name == "Dr. Hélène Dupont"
    assert "Cardiology" in entry.details
    assert "Radiology UZ Leuven" in entry.details
    assert "RIZIV 1-23456-78-901" in entry.details
    assert "Français" in entry.details
    assert entry.language == "fr"
    assert entry.has_mobile is True
    assert entry.has_email is True
    assert "475" not in entry.details
    assert "@" not in entry.details


def test_a_user_without_department_shows_the_city():
    UserFactory(first_name="Karim", last_name="Benali", city="Charleroi")

    [entry] = search("benali")

    assert "Charleroi" in entry.details


def test_a_user_without_mobile_cannot_have_two_factor():
    UserFactory(first_name="Inge", last_name="Smets", mobile="", email="")

    [entry] = search("smets")

    assert entry.has_mobile is False
    assert entry.has_email is False


def _query_count(query):
    directory_quick_search(query=query)  # warm any per-process caches
    with CaptureQueriesContext(connection) as captured:
        found = directory_quick_search(query=query)
    return len(found), len(captured.captured_queries)


def test_the_query_count_does_not_grow_with_the_number_of_results():
    department = DepartmentFactory()
    for index in range(22):
        user = UserFactory(first_name="Emma" if index < 3 else "Lina", last_name="Maes")
        PhysicianNumberFactory(user=user)
        PhysicianNumberFactory(user=user, scheme="BIG", number=f"9{index:010d}")
        MembershipFactory(user=user, department=department)

    few, few_queries = _query_count("emma")
    many, many_queries = _query_count("lina")

    assert (few, many) == (3, 19)  # 19 Linas: all results of a full page
    assert few_queries == many_queries
    assert _query_count("maes")[0] == 20
    assert _query_count("maes")[1] <= many_queries


def test_the_view_returns_a_fragment_the_wizard_can_pick_from(client):
    sender = UserFactory()
    user = UserFactory(
        first_name="Noël",
        last_name="Claes",
        language="nl",
        mobile="+32475000111",
        mobile_public=False,
        email="noel@example.org",
    )
    client.force_login(sender)

    response = client.get(reverse("recipients:quick_search"), {"q": "noel"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert f'data-key="user:{user.pk}"' in html
    assert 'data-name="Noël Claes"' in html
    assert 'data-has-mobile="true"' in html
    assert 'data-has-email="true"' in html
    assert 'data-language="nl"' in html
    assert "data-details=" in html
    assert "475000111" not in html
    assert "noel@example.org" not in html


def test_the_view_says_when_the_query_is_too_short(client):
    client.force_login(UserFactory())

    response = client.get(reverse("recipients:quick_search"), {"q": "a"})

    assert "at least 2 characters" in response.content.decode()


def test_the_view_requires_login(client):
    response = client.get(reverse("recipients:quick_search"), {"q": "jan"})

    assert response.status_code == 302
    assert reverse("login") in response["Location"]


@pytest.mark.postgres
def test_postgres_has_the_trigram_and_unaccent_extensions():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extname FROM pg_extension")
        extensions = {row[0] for row in cursor.fetchall()}

    assert {"pg_trgm", "unaccent"} <= extensions


def _plans(query, *, without_name_btrees=False):
    with CaptureQueriesContext(connection) as captured:
        directory_quick_search(query=query)
    plans = []
    with connection.cursor() as cursor:
        # The test tables are tiny; forbid sequential scans to see which index a
        # query can use, as it would on a large directory.
        cursor.execute("SET LOCAL enable_seqscan = off")
        if without_name_btrees:
            # On a tiny table walking a whole btree looks cheap; on a large one
            # the trigram bitmap wins. Drop the btrees (the test's transaction
            # is rolled back) to show that the trigram index serves the query.
            cursor.execute("DROP INDEX user_search_name_id_idx")
            cursor.execute("DROP INDEX user_search_name_rev_id_idx")
        for executed in captured.captured_queries:
            cursor.execute("EXPLAIN " + executed["sql"])
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


@pytest.mark.postgres
def test_postgres_search_queries_use_the_directory_indexes():
    user = UserFactory(
        first_name="Jürgen", last_name="Müller", email_public=True, mobile_public=True
    )
    PhysicianNumberFactory(user=user, number="1-23456-78-901")

    name_plans = "\n".join(_plans("mul"))
    number_plans = "\n".join(_plans("RIZIV 1-23456-78-901"))
    email_plans = "\n".join(_plans(user.email))
    mobile_plans = "\n".join(_plans(user.mobile))
    substring_plans = "\n".join(_plans("ller", without_name_btrees=True))

    assert "user_search_name_id_idx" in name_plans
    assert "user_search_name_rev_id_idx" in name_plans
    assert "user_search_name_lower_trgm" in substring_plans
    assert "number_digits" in number_plans and "Index" in number_plans
    assert "user_public_email_idx" in email_plans
    assert "user_public_mobile_idx" in mobile_plans


def test_name_prefixes_come_in_one_consistent_order_across_the_limit():
    # Byte order of the folded name ("ann zwart" < "anna aerts"), also in SQL, so
    # that the LIMIT of each query and the final ranking agree.
    for _ in range(20):
        UserFactory(first_name="Anna", last_name="Aerts")
    ann = UserFactory(first_name="Ann", last_name="Zwart")

    found = search("ann")

    assert len(found) == 20
    assert found[0].pk == ann.pk


def test_reindex_repairs_rows_written_without_save():
    user = UserFactory(first_name="Old", last_name="Name")
    User.objects.filter(pk=user.pk).update(first_name="Noël", last_name="Zwart")
    assert directory_quick_search(query="noel") == []

    call_command("directory_reindex", stdout=io.StringIO())

    assert [e.pk for e in directory_quick_search(query="noel zwart")] == [user.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_substring_matches_outside_a_transaction_use_the_trigram_bitmap():
    user = UserFactory(first_name="Jürgen", last_name="Müller")

    with CaptureQueriesContext(connection) as captured:
        found = directory_quick_search(query="ller")
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        after = cursor.fetchone()[0]
        cursor.execute("SHOW plan_cache_mode")
        plans_after = cursor.fetchone()[0]

    assert [e.pk for e in found] == [user.pk]
    substring = [q["sql"] for q in captured.captured_queries if "LOWER(" in q["sql"]]
    # The settings come first in the statement's query string (SET LOCAL).
    assert substring
    settings = re.split(r"\b(?:PREPARE|EXECUTE) ", substring[0], maxsplit=1)[0]
    assert "SET LOCAL enable_seqscan = off;" in settings
    assert after == "on"
    assert plans_after == "auto"
