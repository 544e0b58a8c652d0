"""PostgreSQL's written-out directory statements give what the ORM queries give:
the substring tier's pages-in-order-then-bitmap statement and the groups' and
departments' entries in one query; the entries' statements are prepared once a
connection."""

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from recipients import entries, prepared, selectors
from recipients.models import User
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    UserFactory,
    UserGroupFactory,
)

pytestmark = pytest.mark.postgres


def _bitmap_rows(tokens, seen, limit):
    """The substring tier as it was: one LIMITed query through the bitmap."""
    queryset = (
        User.objects.filter(is_active=True)
        .annotate(search_lower=selectors.Lower("search_name"))
        .filter(selectors._word_conditions("search_lower", tokens))
        .exclude(pk__in=seen)
        .values_list("pk", "search_name_rev")[:limit]
    )
    return [tuple(row) for row in selectors._without_seq_scan(queryset)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("head_pages", "extend_pages", "min_head_matches"),
    [
        (0, 0, selectors.MIN_HEAD_MATCHES),
        (1, 1, selectors.MIN_HEAD_MATCHES),
        # The head's matches are enough to read on, and the pages read on then
        # hold the rest of the LIMIT, or not.
        (1, 2, 1),
        (1, 1000, 1),
        (selectors.HEAD_PAGES, selectors.EXTEND_PAGES, selectors.MIN_HEAD_MATCHES),
    ],
)
def test_substring_rows_are_the_bitmap_querys_rows(
    monkeypatch, head_pages, extend_pages, min_head_matches
):
    # Enough matches to fill the LIMIT and spread over several pages, among
    # users that do not match; one inactive and one already seen are left out.
    matching = []
    for i in range(30):
        matching.append(UserFactory(first_name=f"Jürgen{i}", last_name="Müller"))
        UserFactory(first_name=f"Jan{2 * i}", last_name="Peeters")
        UserFactory(first_name=f"Jan{2 * i + 1}", last_name="Peeters")
    UserFactory(first_name="Inactive", last_name="Müller", is_active=False)
    seen = [matching[3].pk]
    monkeypatch.setattr(selectors, "HEAD_PAGES", head_pages)
    monkeypatch.setattr(selectors, "EXTEND_PAGES", extend_pages)
    monkeypatch.setattr(selectors, "MIN_HEAD_MATCHES", min_head_matches)

    for tokens, limit in ((["ller"], 20), (["ller"], 40), (["jurgen1", "ller"], 20)):
        expected = _bitmap_rows(tokens, seen, limit)
        with CaptureQueriesContext(connection) as captured:
            found = [
                tuple(row) for row in selectors._substring_rows(tokens, seen, limit)
            ]

        assert found == expected
        assert len(captured.captured_queries) == 1
    assert len(_bitmap_rows(["ller"], seen, 40)) == 29


@pytest.mark.django_db(transaction=True)
def test_a_head_without_enough_matches_leaves_the_rest_to_the_bitmap(monkeypatch):
    users = [UserFactory(first_name="Anna", last_name=f"Zoller{i}") for i in range(5)]
    monkeypatch.setattr(selectors, "HEAD_PAGES", 0)

    found = selectors._substring_rows(["ller"], [], 20)

    assert sorted(pk for pk, _name in found) == sorted(u.pk for u in users)


@pytest.mark.django_db
def test_group_and_department_entries_in_one_query_match_the_orm_entries():
    public = UserGroupFactory(name="Team Müller", description="MRI", city="Gent")
    private = UserGroupFactory(name="Private team", is_public=False)
    empty = UserGroupFactory(name="Empty team")
    fr = UserFactory(language="fr", mobile="")
    nl = UserFactory(language="nl", email="")
    nl2 = UserFactory(language="nl")
    gone = UserFactory(language="de", is_active=False)
    public.members.add(fr, nl, nl2, gone)
    private.members.add(fr)
    department = DepartmentFactory(
        name="Radiology Zoller", postcode="9000", is_public=True, language="nl"
    )
    hidden = DepartmentFactory(name="Hidden", is_public=False)
    lonely = DepartmentFactory(name="Lonely", is_public=True, postcode="")
    for user in (fr, nl, gone):
        MembershipFactory(user=user, department=department)
    MembershipFactory(user=nl, department=hidden)
    groups = [public.pk, private.pk, empty.pk, 999999]
    departments = [department.pk, hidden.pk, lonely.pk]

    for private_groups, private_departments in (((), ()), ([private.pk], [hidden.pk])):
        expected = entries._group_entries(groups, private_groups)
        expected.update(entries._department_entries(departments, private_departments))
        with CaptureQueriesContext(connection) as captured:
            found = entries._container_entries(
                groups, departments, private_groups, private_departments
            )

        assert found == expected
        assert len(captured.captured_queries) == 1
    assert found[f"group:{public.pk}"].language == "nl"
    assert f"group:{private.pk}" in found and f"department:{hidden.pk}" in found


@pytest.mark.django_db
def test_entries_and_favorites_without_users_read_the_favorites_with_the_groups():
    owner = UserFactory()
    group = UserGroupFactory(name="Team")
    starred = UserFactory()
    entries.Favorite.objects.create(owner=owner, user=starred)
    entries.Favorite.objects.create(owner=owner, group=group)

    with CaptureQueriesContext(connection) as captured:
        found, favorites = entries.entries_and_favorites(
            [("group", group.pk)], owner=owner
        )
    with CaptureQueriesContext(connection) as none_captured:
        nothing, no_favorites = entries.entries_and_favorites(
            [("group", 999999)], owner=owner
        )

    assert [e.key for e in found] == [f"group:{group.pk}"]
    assert favorites == {f"group:{group.pk}", f"user:{starred.pk}"}
    assert len(captured.captured_queries) == 1
    assert nothing == [] and no_favorites == set()
    assert len(none_captured.captured_queries) == 1


@pytest.mark.django_db(transaction=True)
def test_entries_statements_are_prepared_once_per_connection():
    user = UserFactory(first_name="Anna", last_name="Zoller")
    group = UserGroupFactory(name="Team Zoller")
    connection.close()

    def statements():
        with CaptureQueriesContext(connection) as captured:
            found = entries.entries_for_keys([("user", user.pk), ("group", group.pk)])
        assert [e.key for e in found] == [f"user:{user.pk}", f"group:{group.pk}"]
        # Each statement is one query string: its first execution prepares it.
        return [
            "PREPARE" if "PREPARE " in query["sql"] else "EXECUTE"
            for query in captured.captured_queries
        ]

    first, again = statements(), statements()

    assert first == ["PREPARE", "PREPARE"]
    assert again == ["EXECUTE", "EXECUTE"]


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_or_a_failed_execution_prepares_again():
    def divide(by):
        with connection.cursor() as cursor:
            prepared.execute_prepared(
                cursor,
                name="test_divide",
                sql="SELECT 6 / $1",
                types=["int"],
                params=[by],
            )
            return cursor.fetchone()[0]

    assert divide(2) == 3
    connection.close()
    assert divide(3) == 2  # a new connection: prepared again
    with pytest.raises(DataError), transaction.atomic():
        divide(0)
    assert divide(1) == 6
    with pytest.raises(DataError):
        connection.close()
        divide(0)  # failed on its first execution on this connection
    assert divide(6) == 1


@pytest.mark.django_db(transaction=True)
def test_the_prepared_name_prefixes_are_the_orms_startswith_rows():
    for first, last in (
        ("Anna", "Zoller"),
        ("Anna", "Zz"),
        ("Anna", "Z"),
        ("Annb", "Xavier"),
        ("Annaz", "Peeters"),
        ("Zed", "Anna"),
        ("Jan", "Van Der Berg"),
    ):
        UserFactory(first_name=first, last_name=last)
    UserGroupFactory(name="Anna's team")
    DepartmentFactory(name="Radiology Anna", is_public=True)

    for text in ("an", "anna", "anna z", "annaz", "anna zz", "zz", "vanderb", "9"):
        parsed = selectors._parse(text)
        expected = sorted(
            row for scan in selectors._prefix_scans(parsed.person, 20) for row in scan
        ) + sorted(
            row
            for rows in selectors._groups_and_departments(parsed.folded)
            for row in rows
        )
        for _ in range(2):  # prepared, then run prepared
            sql, params = selectors._name_matches_sql(parsed, 20)
            with connection.cursor() as cursor:
                selectors._execute(
                    cursor,
                    name=selectors._statement_name("names", parsed.folded.split()),
                    sql=sql,
                    params=params,
                )
                rows = cursor.fetchall()
            users = sorted(row for row in rows if row[0] == "user")
            others = sorted(row for row in rows if row[0] != "user")

            assert users + others == expected, text


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    [
        "RIZIV 1-08777-40-380",
        "1-05424-99-463",
        "1044144",
        "INAMI 10889922114",
        "0470 12 34 56",
        "+32470123456",
        "jan 0470 12 34 56",
        "Anna.Zoller@Example.be",
        "10_%",
    ],
)
def test_exact_matches_run_the_sql_the_orm_compiles(text):
    parsed = selectors._parse(text)
    shapes = [("number", ""), ("number", "__startswith")] if parsed.number else []
    shapes += [("mobile", "")] if parsed.mobiles else []
    shapes += [("email", "")] if parsed.email else []
    assert shapes

    for kind, lookup in shapes:
        for limit in (1, 20):
            expected = selectors._exact_queryset(kind, parsed, limit, lookup)
            params = selectors._exact_params(kind, parsed, lookup)
            mobiles = len(params) if kind == "mobile" else 0
            sql = selectors._exact_sql(
                kind, lookup, bool(parsed.scheme), mobiles, limit
            )

            assert (sql, tuple(params)) == expected.query.sql_with_params()
