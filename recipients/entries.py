"""Directory entries: what a sender sees of a user, group or department.

An entry carries what a sender needs to pick the right recipient and nothing
from which a private mobile or e-mail could be learnt: only whether one exists.
Every builder here runs a fixed number of queries, however many rows it is given.
"""

import functools
import re
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection
from django.db.models import Count, F, Prefetch, Q
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import (
    Department,
    Favorite,
    Language,
    Membership,
    PhysicianNumber,
    User,
    UserGroup,
    strip_scheme_prefix,
)
from .prepared import execute_prepared

KINDS = ("user", "group", "department")
_KEY = re.compile(r"^(user|group|department):([1-9][0-9]{0,18})$")


@dataclass(frozen=True)
class DirectoryEntry:
    """One pickable recipient: a user, a public group or a public department."""

    kind: str
    pk: int
    key: str
    name: str
    details: str
    language: str
    has_mobile: bool
    has_email: bool


def parse_key(key):
    """Return (kind, pk) for a key such as "user:12", or None when malformed."""
    match = _KEY.match(key or "")
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def entries_by_key(
    *, user_pks=(), group_pks=(), department_pks=(), private_ok=frozenset()
):
    """Return {key: DirectoryEntry} for the active users and public groups and
    departments among the given primary keys (others are left out).

    `private_ok` holds keys ("group:3") pickable although not public: the
    sender's own favorites (a group or department starred for them).
    """
    entries = {}
    if user_pks:
        entries.update(_user_entries(user_pks))
    private_groups = _private_pks("group", private_ok)
    private_departments = _private_pks("department", private_ok)
    if (group_pks or department_pks) and connection.vendor == "postgresql":
        entries.update(
            _container_entries(
                group_pks, department_pks, private_groups, private_departments
            )
        )
        return entries
    if group_pks:
        entries.update(_group_entries(group_pks, private_groups))
    if department_pks:
        entries.update(_department_entries(department_pks, private_departments))
    return entries


def _private_pks(kind, keys):
    return [pk for k, pk in filter(None, map(parse_key, keys)) if k == kind]


def entries_for_keys(keys, *, private_ok=frozenset()):
    """Return the entries for (kind, pk) pairs in order, skipping unpickable ones
    (see entries_by_key for `private_ok`)."""
    pks = {kind: [] for kind in KINDS}
    for kind, pk in keys:
        pks[kind].append(pk)
    found = entries_by_key(
        user_pks=pks["user"],
        group_pks=pks["group"],
        department_pks=pks["department"],
        private_ok=private_ok,
    )
    result = []
    for kind, pk in keys:
        entry = found.get(f"{kind}:{pk}")
        if entry is not None:
            result.append(entry)
    return result


def favorite_keys(rows):
    """Return the keys ("user:12", ...) of favorites given as (user_id, group_id,
    department_id) rows."""
    keys = set()
    for user_id, group_id, department_id in rows:
        if user_id:
            keys.add(f"user:{user_id}")
        elif group_id:
            keys.add(f"group:{group_id}")
        else:
            keys.add(f"department:{department_id}")
    return keys


def _favorite_rows(owner):
    return Favorite.objects.filter(owner=owner).values_list(
        "user_id", "group_id", "department_id"
    )


def entries_and_favorites(keys, *, owner):
    """Return (the entries for (kind, pk) pairs as entries_for_keys does, the keys
    of `owner`'s favorites); no favorites are read when there is no entry.

    On PostgreSQL the favorites come in the users' query (or, without users,
    in the groups' and departments'), as uncorrelated subqueries evaluated
    once: a page of users costs one query, a page of users, groups and
    departments two.
    """
    pks = {kind: [] for kind in KINDS}
    for kind, pk in keys:
        pks[kind].append(pk)
    favorites = None
    if keys and connection.vendor == "postgresql":
        favorites = set()
        found = {}
        if pks["user"]:
            found = _user_entries(pks["user"], favorites_of=owner, favorites=favorites)
        if pks["group"] or pks["department"]:
            # Without users, the favorites come with the groups and departments.
            found.update(
                _container_entries(
                    pks["group"],
                    pks["department"],
                    favorites_of=None if pks["user"] else owner,
                    favorites=favorites,
                )
            )
        entries = [found[f"{k}:{pk}"] for k, pk in keys if f"{k}:{pk}" in found]
    else:
        entries = entries_for_keys(keys)
    if favorites is None:
        favorites = favorite_keys(_favorite_rows(owner)) if entries else set()
    return entries, favorites


def _join(parts):
    return " · ".join(p for p in parts if p)


_USER_FIELDS = (
    "pk",
    "username",
    "title",
    "first_name",
    "last_name",
    "speciality",
    "city",
    "language",
    "mobile",
    "email",
)


class _UserRow(NamedTuple):
    """What an entry shows of a user, read without a model instance."""

    pk: int
    username: str
    title: str
    first_name: str
    last_name: str
    speciality: str
    city: str
    language: str
    mobile: str
    email: str

    display_name = User.display_name


@functools.cache
def _user_rows_sql(with_favorites):
    """The PostgreSQL statement of _user_rows: each user with their physician
    numbers and public departments as arrays of correlated subqueries (and the
    owner's favorites as arrays of uncorrelated ones, evaluated once). Written
    out rather than built by the ORM: it runs on every keystroke of the quick
    search, and its compilation cost more than its execution (and its planning
    too: it runs prepared, see recipients/prepared.py). Parameters: $1 the
    users' primary keys, $2 the owner's."""
    quote = connection.ops.quote_name
    users, numbers, departments, memberships = (
        quote(model._meta.db_table)
        for model in (User, PhysicianNumber, Department, Membership)
    )
    columns = ", ".join(f"u.{quote(name)}" for name in ("id", *_USER_FIELDS[1:]))
    by_number = "ORDER BY n.scheme, n.number"
    owned = _owned_sql("$2") if with_favorites else ""
    return (
        f"SELECT {columns}, "  # noqa: S608 (table and column names; values are parameters)
        f"ARRAY(SELECT n.scheme FROM {numbers} n WHERE n.user_id = u.id {by_number}), "
        f"ARRAY(SELECT n.number FROM {numbers} n WHERE n.user_id = u.id {by_number}), "
        f"ARRAY(SELECT d.name FROM {departments} d "
        f"JOIN {memberships} m ON m.department_id = d.id "
        f"WHERE d.is_public AND m.user_id = u.id ORDER BY d.name, d.id)"
        f"{owned} FROM {users} u WHERE u.is_active AND u.id = ANY($1)"
    )


def _owned_sql(owner):
    """The owner's favorites as three uncorrelated array columns (users, groups,
    departments), for a statement's select list; `owner` is the placeholder of
    the owner's primary key ("$2")."""
    favorites = connection.ops.quote_name(Favorite._meta.db_table)
    return "".join(
        f", ARRAY(SELECT f.{kind}_id FROM {favorites} f "  # noqa: S608 (names only)
        f"WHERE f.owner_id = {owner} AND f.{kind}_id IS NOT NULL)"
        for kind in KINDS
    )


def _add_owned(favorites, owned):
    favorites.update(
        f"{kind}:{pk}"
        for kind, pks_of_kind in zip(KINDS, owned, strict=True)
        for pk in pks_of_kind
    )


def _user_rows(pks, *, favorites_of=None, favorites=None):
    """Return (user, [(scheme, number)], [public department names]) per active user.

    On PostgreSQL one query (see _user_rows_sql); with `favorites_of`, that
    user's favorites come in it too, added to the set `favorites`. Elsewhere
    (SQLite in tests) three, by prefetching, and the favorites are left to the
    caller.
    """
    if connection.vendor == "postgresql":
        fields = len(_UserRow._fields)
        with connection.cursor() as cursor:
            owned = favorites_of is not None
            execute_prepared(
                cursor,
                name="directory_user_rows" + ("_owned" if owned else ""),
                sql=_user_rows_sql(owned),
                types=("bigint[]", "bigint"),
                params=[[int(pk) for pk in pks], getattr(favorites_of, "pk", None)],
            )
            rows = cursor.fetchall()
        if favorites_of is not None:
            if rows:
                _add_owned(favorites, rows[0][fields + 3 :])
            else:  # no active user among pks: the favorites still count
                favorites.update(favorite_keys(_favorite_rows(favorites_of)))
        return [
            (
                _UserRow(*row[:fields]),
                list(zip(row[fields], row[fields + 1], strict=True)),
                row[fields + 2],
            )
            for row in rows
        ]
    users = User.objects.filter(pk__in=list(pks), is_active=True).only(*_USER_FIELDS)
    users = users.prefetch_related(
        Prefetch(
            "physician_numbers",
            queryset=PhysicianNumber.objects.order_by("scheme", "number"),
        ),
        Prefetch(
            "departments",
            queryset=Department.objects.filter(is_public=True)
            .order_by("name", "pk")
            .only("pk", "name"),
        ),
    )
    return [
        (
            user,
            [(n.scheme, n.number) for n in user.physician_numbers.all()],
            [d.name for d in user.departments.all()],
        )
        for user in users
    ]


def _user_entries(pks, **favorites):
    languages = dict(Language.choices)
    entries = {}
    for user, numbers, departments in _user_rows(pks, **favorites):
        places = ", ".join(departments) or user.city
        numbers = ", ".join(
            f"{scheme} {strip_scheme_prefix(scheme, number)}"
            for scheme, number in numbers
        )
        details = _join(
            [user.speciality, places, numbers, languages.get(user.language, "")]
        )
        key = f"user:{user.pk}"
        entries[key] = DirectoryEntry(
            kind="user",
            pk=user.pk,
            key=key,
            name=user.display_name,
            details=details,
            language=user.language,
            has_mobile=bool(user.mobile),
            has_email=bool(user.email),
        )
    return entries


def majority_language(languages):
    """Return the language most of `languages` hold; on a tie, the first one's
    among the tied (the group's first member)."""
    counts = Counter(language for language in languages if language)
    if not counts:
        return ""
    top = max(counts.values())
    return next(lang for lang in languages if counts.get(lang) == top)


def _group_languages(pks):
    """Return {group pk: majority language of its active members}, in one query;
    members count in the order they joined."""
    through = UserGroup.members.through
    rows = (
        through.objects.filter(usergroup_id__in=list(pks), user__is_active=True)
        .order_by("id")
        .values_list("usergroup_id", "user__language")
    )
    languages = {}
    for group_pk, language in rows:
        languages.setdefault(group_pk, []).append(language)
    return {pk: majority_language(langs) for pk, langs in languages.items()}


def members_without_email(*, group_pks=(), department_pks=()):
    """Return {key: [display names]} of the active members of groups and
    departments who have no e-mail address (so get no mail), in two queries."""
    result = {}
    queries = (
        ("group", "user_groups", group_pks),
        ("department", "memberships__department", department_pks),
    )
    for kind, relation, pks in queries:
        if not pks:
            continue
        users = (
            User.objects.filter(
                **{f"{relation}__in": list(pks)}, is_active=True, email=""
            )
            .annotate(container=F(relation))
            .order_by("last_name", "first_name", "id")
        )
        for user in users:
            result.setdefault(f"{kind}:{user.container}", []).append(user.display_name)
    return result


def _member_counts(prefix):
    """Count active members, and those without a mobile or an e-mail."""
    active = Q(**{f"{prefix}__is_active": True})
    return {
        "n_members": Count(prefix, filter=active, distinct=True),
        "n_without_mobile": Count(
            prefix, filter=active & Q(**{f"{prefix}__mobile": ""}), distinct=True
        ),
        "n_without_email": Count(
            prefix, filter=active & Q(**{f"{prefix}__email": ""}), distinct=True
        ),
    }


def _members_text(count):
    return ngettext("%(count)d member", "%(count)d members", count) % {"count": count}


@functools.cache
def _container_rows_sql(with_favorites):
    """The PostgreSQL statement of _container_entries: the pickable groups and
    departments among the given keys with their active members' counts (and a
    group's members' languages in the order they joined), in one UNION ALL;
    with the owner's favorites as in _user_rows_sql. The same rows and counts
    as the ORM queries of _group_entries, _group_languages and
    _department_entries. Prepared as _user_rows_sql is; parameters: $1 the
    groups' primary keys, $2 the private groups that may be picked, $3 and $4
    the same of departments, $5 the owner's."""
    quote = connection.ops.quote_name
    users, groups, departments, memberships = (
        quote(model._meta.db_table)
        for model in (User, UserGroup, Department, Membership)
    )
    group_members = quote(UserGroup.members.through._meta.db_table)
    # count(*): a user is a member of a group or department at most once (the
    # tables' unique constraints), as Count(distinct=True) counted.
    counts = (
        "count(*), count(*) FILTER (WHERE u.mobile = ''), "
        "count(*) FILTER (WHERE u.email = '')"
    )
    owned = _owned_sql("$5") if with_favorites else ""
    return (
        "SELECT 'group', g.id, g.name, g.description, g.city, '', '', c.*"  # noqa: S608 (names only; values are parameters)
        f"{owned} FROM {groups} g CROSS JOIN LATERAL (SELECT {counts}, "
        f"array_agg(u.language ORDER BY gm.id) FROM {group_members} gm "
        f"JOIN {users} u ON u.id = gm.user_id "
        "WHERE gm.usergroup_id = g.id AND u.is_active) c "
        "WHERE g.id = ANY($1) "
        "AND (g.is_public OR g.id = ANY($2)) UNION ALL "
        "SELECT 'department', d.id, d.name, '', d.city, d.postcode, d.language, "
        f"c.*{owned} FROM {departments} d CROSS JOIN LATERAL "
        f"(SELECT {counts}, NULL::varchar[] FROM {memberships} m "
        f"JOIN {users} u ON u.id = m.user_id "
        "WHERE m.department_id = d.id AND u.is_active) c "
        "WHERE d.id = ANY($3) "
        "AND (d.is_public OR d.id = ANY($4))"
    )


def _container_entries(
    group_pks,
    department_pks,
    private_groups=(),
    private_departments=(),
    *,
    favorites_of=None,
    favorites=None,
):
    """PostgreSQL: _group_entries and _department_entries in one query (see
    _container_rows_sql); with `favorites_of`, that user's favorites are added
    to the set `favorites` (none when nothing is found)."""
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            name="directory_container_rows"
            + ("_owned" if favorites_of is not None else ""),
            sql=_container_rows_sql(favorites_of is not None),
            types=("bigint[]", "bigint[]", "bigint[]", "bigint[]", "bigint"),
            params=[
                [int(pk) for pk in group_pks],
                [int(pk) for pk in private_groups],
                [int(pk) for pk in department_pks],
                [int(pk) for pk in private_departments],
                getattr(favorites_of, "pk", None),
            ],
        )
        rows = cursor.fetchall()
    if favorites_of is not None and rows:
        _add_owned(favorites, rows[0][11:])
    entries = {}
    for row in rows:
        kind, pk, name, description, city, postcode, language = row[:7]
        n_members, n_without_mobile, n_without_email, languages = row[7:11]
        if kind == "group":
            details = [_("Group"), description, city, _members_text(n_members)]
            # A group counts for the mail language with its members' majority.
            language = majority_language(languages or [])
        else:
            place = " ".join(p for p in (postcode, city) if p)
            details = [_("Department"), place, _members_text(n_members)]
        key = f"{kind}:{pk}"
        entries[key] = DirectoryEntry(
            kind=kind,
            pk=pk,
            key=key,
            name=name,
            details=_join(details),
            language=language,
            # Two-factor asks every member a code: possible only if all have a
            # mobile. The mail goes to every member who has an address.
            has_mobile=n_members > 0 and n_without_mobile == 0,
            has_email=n_members > n_without_email,
        )
    return entries


def _group_entries(pks, private_pks=()):
    pickable = Q(is_public=True) | Q(pk__in=list(private_pks))
    groups = UserGroup.objects.filter(pickable, pk__in=list(pks)).annotate(
        **_member_counts("members")
    )
    languages = _group_languages(pks)
    entries = {}
    for group in groups:
        key = f"group:{group.pk}"
        entries[key] = DirectoryEntry(
            kind="group",
            pk=group.pk,
            key=key,
            name=group.name,
            details=_join(
                [
                    _("Group"),
                    group.description,
                    group.city,
                    _members_text(group.n_members),
                ]
            ),
            # A group counts for the mail language with its members' majority.
            language=languages.get(group.pk, ""),
            # Two-factor asks every member a code: possible only if all have a
            # mobile. The mail goes to every member who has an address.
            has_mobile=group.n_members > 0 and group.n_without_mobile == 0,
            has_email=group.n_members > group.n_without_email,
        )
    return entries


def _department_entries(pks, private_pks=()):
    pickable = Q(is_public=True) | Q(pk__in=list(private_pks))
    departments = Department.objects.filter(pickable, pk__in=list(pks)).annotate(
        **_member_counts("members")
    )
    entries = {}
    for department in departments:
        key = f"department:{department.pk}"
        place = " ".join(p for p in (department.postcode, department.city) if p)
        entries[key] = DirectoryEntry(
            kind="department",
            pk=department.pk,
            key=key,
            name=department.name,
            details=_join(
                [_("Department"), place, _members_text(department.n_members)]
            ),
            language=department.language,
            has_mobile=department.n_members > 0 and department.n_without_mobile == 0,
            has_email=department.n_members > department.n_without_email,
        )
    return entries
