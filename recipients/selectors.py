"""Reads of the recipient directory: quick search, detailed search, favorites.

The quick search is a handful of small queries, each served by an index on
PostgreSQL (see migration 0002), merged and ranked here: exact physician
number, public e-mail and public mobile first, then name prefixes ("first last"
or "last first"), then the rest (word prefixes and substrings of names,
physician-number prefixes). A query that has already found enough results stops
early, and no query grows with the size of the directory beyond its LIMIT.
"""

import functools
import re
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import CharField, Q, Value
from django.db.models.functions import Lower

from .entries import (
    DirectoryEntry,
    entries_and_favorites,
    entries_for_keys,
    favorite_keys,
    parse_key,
)
from .folding import fold, fold_accents, fold_person_name, mobile_candidates
from .models import (
    Department,
    Favorite,
    Membership,
    PhysicianNumber,
    User,
    UserGroup,
    normalize_number,
    scheme_number_digits,
)
from .prepared import execute_prepared, numbered

__all__ = [
    "DirectoryEntry",
    "MAX_RESULTS",
    "MIN_QUERY_LENGTH",
    "directory_detailed_search",
    "directory_entry_for_key",
    "directory_quick_search",
    "favorites_of",
]

MIN_QUERY_LENGTH = 2
MAX_RESULTS = 20
# Substring matches inside names need a trigram; shorter words match word starts.
MIN_SUBSTRING_LENGTH = 3
MIN_NUMBER_PREFIX_LENGTH = 3

EXACT, NAME_PREFIX, OTHER = 0, 1, 2
_KIND_ORDER = {"user": 0, "group": 1, "department": 2}

# Scheme names a sender may type before a number; INAMI is RIZIV in French.
SCHEME_ALIASES = {s: s for s in PhysicianNumber.Scheme.values} | {"INAMI": "RIZIV"}
_SCHEME_PREFIX = re.compile(r"^([A-Za-z]+)[\s:.#/-]*([0-9].*)$")


@dataclass(frozen=True)
class _Query:
    text: str
    folded: str
    # Folded as a person's name, particles joined ("de smet" -> "desmet").
    person: str
    scheme: str | None
    number: str
    mobiles: tuple
    email: str


def _parse(query):
    text = " ".join((query or "").split())
    scheme, number_text = None, text
    match = _SCHEME_PREFIX.match(text)
    if match and match.group(1).upper() in SCHEME_ALIASES:
        scheme, number_text = SCHEME_ALIASES[match.group(1).upper()], match.group(2)
    number = normalize_number(number_text)
    if not any(ch.isdigit() for ch in number):
        number = ""
    return _Query(
        text=text,
        folded=fold(text),
        person=fold_person_name(text),
        scheme=scheme,
        number=number,
        mobiles=mobile_candidates(text),
        email=text.lower() if "@" in text and " " not in text else "",
    )


def _active_users():
    return User.objects.filter(is_active=True)


def _word_conditions(field, tokens):
    """Each token starts a word of the field, or (3+ letters) occurs anywhere in it."""
    condition = Q()
    for token in tokens:
        if len(token) >= MIN_SUBSTRING_LENGTH:
            condition &= Q(**{f"{field}__contains": token})
        else:
            condition &= Q(**{f"{field}__startswith": token}) | Q(
                **{f"{field}__contains": f" {token}"}
            )
    return condition


def directory_quick_search(
    *, query: str, limit: int = MAX_RESULTS
) -> list[DirectoryEntry]:
    """Return at most `limit` (≤ 20) entries matching the typed text, best first."""
    return entries_for_keys(_quick_search_keys(query, limit))


def directory_quick_search_with_favorites(
    *, query: str, user, limit: int = MAX_RESULTS
) -> tuple[list[DirectoryEntry], set[str]]:
    """Return the quick search's entries and the keys of `user`'s favorites (read
    with the entries where the database allows; not at all without a result)."""
    return entries_and_favorites(_quick_search_keys(query, limit), owner=user)


def _quick_search_keys(query, limit):
    """Return the (kind, pk) of at most `limit` entries matching, best first."""
    limit = max(0, min(limit, MAX_RESULTS))
    parsed = _parse(query)
    if limit == 0 or len(parsed.text) < MIN_QUERY_LENGTH:
        return []
    found = {}  # (kind, pk) -> (rank, sort key)

    def add(kind, pk, rank, sort_key):
        previous = found.get((kind, pk))
        if previous is None or (rank, sort_key) < previous:
            found[(kind, pk)] = (rank, sort_key)

    def enough(rank):
        return sum(1 for r, _ in found.values() if r <= rank) >= limit

    _exact_matches(parsed, limit, add)
    # A scheme name ("RIZIV 1-23…"), an e-mail or digits alone are not names.
    is_name = (
        any(ch.isalpha() for ch in parsed.folded)
        and not parsed.email
        and not parsed.scheme
        and len(parsed.folded) >= MIN_QUERY_LENGTH
    )
    if is_name:
        if connection.features.supports_slicing_ordering_in_compound:
            # PostgreSQL: the name prefixes, groups and departments in one query.
            _name_matches_in_one_query(parsed, limit, add)
        else:
            _name_prefix_matches(parsed.person, limit, add)
            _group_and_department_matches(parsed.folded, limit, add)
        if not enough(NAME_PREFIX):
            _other_name_matches(parsed.person, limit, found, add)
    long_number = len(parsed.number) >= MIN_NUMBER_PREFIX_LENGTH
    if long_number and not enough(OTHER):
        _number_matches(parsed, limit, add, lookup="__startswith", rank=OTHER)

    ranked = sorted(
        found.items(),
        key=lambda item: (item[1][0], item[1][1], _KIND_ORDER[item[0][0]], item[0][1]),
    )
    return [kind_pk for kind_pk, _ in ranked[:limit]]


def _number_matches(parsed, limit, add, *, lookup, rank):
    for user_id, name in _exact_rows("number", parsed, limit, lookup=lookup):
        add("user", user_id, rank, name)


def _exact_matches(parsed, limit, add):
    if parsed.number:
        _number_matches(parsed, limit, add, lookup="", rank=EXACT)
    if parsed.mobiles:
        for pk, name in _exact_rows("mobile", parsed, limit):
            add("user", pk, EXACT, name)
    if parsed.email:
        for pk, name in _exact_rows("email", parsed, limit):
            add("user", pk, EXACT, name)


def _exact_queryset(kind, parsed, limit, lookup=""):
    """Return the ORM query of a physician number (exact, or a prefix with
    lookup="__startswith"), a public mobile or a public e-mail, as
    (user pk, search_name_rev) rows."""
    if kind == "number":
        numbers = PhysicianNumber.objects.filter(
            **{f"number_digits{lookup}": parsed.number}, user__is_active=True
        )
        if parsed.scheme:
            numbers = numbers.filter(scheme=parsed.scheme)
        return numbers.values_list("user_id", "user__search_name_rev")[:limit]
    if kind == "mobile":
        users = _active_users().filter(
            mobile_public=True, search_mobile__in=parsed.mobiles
        )
    else:
        users = (
            _active_users()
            .annotate(email_lower=Lower("email"))
            .filter(email_public=True, email_lower=parsed.email)
        )
    return users.values_list("pk", "search_name_rev")[:limit]


def _exact_params(kind, parsed, lookup=""):
    """Return the parameters the ORM gives _exact_queryset(), in its order."""
    if kind == "number":
        number = parsed.number
        if lookup:
            number = f"{connection.ops.prep_for_like_query(number)}%"
        return [number, *([parsed.scheme] if parsed.scheme else [])]
    if kind == "mobile":
        return list(dict.fromkeys(parsed.mobiles))  # the ORM drops repeats
    return [parsed.email]


@functools.lru_cache(maxsize=128)
def _exact_sql(kind, lookup, with_scheme, mobiles, limit):
    """Return the SQL the ORM compiles for _exact_queryset() of this shape,
    compiled once: compiling it cost more than running it."""
    shape = _Query(
        text="",
        folded="",
        person="",
        scheme="RIZIV" if with_scheme else None,
        number="1",
        mobiles=tuple(f"+{i}" for i in range(mobiles)),
        email="a@b",
    )
    return _exact_queryset(kind, shape, limit, lookup).query.sql_with_params()[0]


def _exact_rows(kind, parsed, limit, *, lookup=""):
    if connection.vendor != "postgresql":
        return list(_exact_queryset(kind, parsed, limit, lookup))
    params = _exact_params(kind, parsed, lookup)
    mobiles = len(params) if kind == "mobile" else 0
    sql = _exact_sql(kind, lookup, bool(parsed.scheme), mobiles, limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _prefix_scans(folded, limit):
    """Return the two ordered, limited scans of user names starting with `folded`,
    as (kind, pk, sort key) rows."""
    return [
        _active_users()
        .filter(**{f"{field}__startswith": folded})
        .annotate(kind=Value("user", output_field=CharField()))
        .order_by(field, "pk")
        .values_list("kind", "pk", field)[:limit]
        for field in ("search_name", "search_name_rev")
    ]


def _groups_and_departments(folded):
    """Return the public groups and departments whose names match `folded`, as
    two querysets of (kind, pk, search_name) rows."""
    condition = _word_conditions("search_name", folded.split())
    return [
        model.objects.filter(condition, is_public=True)
        .annotate(kind=Value(kind, output_field=CharField()))
        .values_list("kind", "pk", "search_name")
        for kind, model in (("group", UserGroup), ("department", Department))
    ]


def _add_groups_and_departments(rows, folded, limit, add):
    # The first limit * 4 by name, as one ordered query of both tables gave them.
    rows = sorted(rows, key=lambda row: (row[2], row[1]))[: limit * 4]
    for kind, pk, key in rows:
        add(kind, pk, NAME_PREFIX if key.startswith(folded) else OTHER, key)


def _like(text, *, prefix="", suffix=""):
    return prefix + connection.ops.prep_for_like_query(text) + suffix


def _words_sql(column, tokens):
    """_word_conditions() as SQL and parameters (the same LIKE patterns)."""
    parts, params = [], []
    for token in tokens:
        if len(token) >= MIN_SUBSTRING_LENGTH:
            parts.append(f"{column}::text LIKE %s")
            params.append(_like(token, prefix="%", suffix="%"))
        else:
            parts.append(f"({column}::text LIKE %s OR {column}::text LIKE %s)")
            params += [
                _like(token, suffix="%"),
                _like(f" {token}", prefix="%", suffix="%"),
            ]
    return " AND ".join(parts) or "TRUE", params


def _prefix_range(text):
    """Return (low, high): the folded names that start with `text` are those
    with low <= name < high in byte order, the "C" collation of the folded
    columns (migration 0002), whose btrees serve both (LIKE 'text%' does only
    with the pattern itself, which a prepared statement does not have)."""
    return text, text[:-1] + chr(ord(text[-1]) + 1)


def _statement_name(kind, tokens):
    """Return the name of the prepared statement for `tokens`, one per count of
    words and of short ones; None past MAX_PREPARED_WORDS (run unprepared)."""
    if len(tokens) > MAX_PREPARED_WORDS:
        return None
    shape = "".join("w" if len(t) >= MIN_SUBSTRING_LENGTH else "s" for t in tokens)
    return f"directory_{kind}_{shape}"


# Queries of more words than this run unprepared: each shape of query is a
# statement kept on the connection, and those are rare.
MAX_PREPARED_WORDS = 4


def _execute(cursor, *, name, sql, params, prefix=""):
    if name is None or connection.vendor != "postgresql":
        cursor.execute(prefix + sql, params)
    else:
        execute_prepared(
            cursor, name=name, sql=numbered(sql), params=params, prefix=prefix
        )


def _name_matches_sql(parsed, limit):
    """The statement of _name_matches_in_one_query: the union of _prefix_scans()
    and _groups_and_departments() (same conditions, same indexes, a name
    prefix as its byte range), written out: it runs on every keystroke, and
    building it through the ORM cost more than running it. Names come from the
    models; every value is a parameter."""
    quote = connection.ops.quote_name
    users = quote(User._meta.db_table)
    scans, params = [], []
    for field in ("search_name", "search_name_rev"):
        column = f"{users}.{quote(field)}"
        scans.append(
            f"(SELECT %s, {users}.{quote('id')}, {column} FROM {users} "  # noqa: S608
            f"WHERE {users}.{quote('is_active')} AND {column} >= %s "
            f"AND {column} < %s ORDER BY 3 ASC, 2 ASC LIMIT %s)"
        )
        params += ["user", *_prefix_range(parsed.person), limit]
    for kind, model in (("group", UserGroup), ("department", Department)):
        table = quote(model._meta.db_table)
        condition, words = _words_sql(
            f"{table}.{quote('search_name')}", parsed.folded.split()
        )
        scans.append(
            f"(SELECT %s, {table}.{quote('id')}, {table}.{quote('search_name')} "  # noqa: S608
            f"FROM {table} WHERE ({condition}) AND {table}.{quote('is_public')} "
            "ORDER BY 3 ASC, 2 ASC LIMIT %s)"
        )
        params += [kind, *words, limit * 4]
    return " UNION ALL ".join(scans), params


def _name_matches_in_one_query(parsed, limit, add):
    """Both user name-prefix scans and the group and department matches in one
    UNION ALL of four ordered, limited scans (one round trip, not two)."""
    sql, params = _name_matches_sql(parsed, limit)
    with connection.cursor() as cursor:
        _execute(
            cursor,
            name=_statement_name("names", parsed.folded.split()),
            sql=sql,
            params=params,
        )
        rows = cursor.fetchall()
    others = []
    for kind, pk, key in rows:
        if kind == "user":
            add(kind, pk, NAME_PREFIX, key)
        else:
            others.append((kind, pk, key))
    _add_groups_and_departments(others, parsed.folded, limit, add)


def _name_prefix_matches(folded, limit, add):
    # Two ordered index scans, each stopping after `limit` rows; a user is ranked
    # by whichever of "first last" / "last first" starts with the query.
    # Where the database allows it (PostgreSQL) both scans go in one UNION ALL.
    scans = [
        _active_users()
        .filter(**{f"{field}__startswith": folded})
        .order_by(field, "pk")
        .values_list("pk", field)[:limit]
        for field in ("search_name", "search_name_rev")
    ]
    if connection.features.supports_slicing_ordering_in_compound:
        scans = [scans[0].union(scans[1], all=True)]
    for rows in scans:
        for pk, key in rows:
            add("user", pk, NAME_PREFIX, key)


def _other_name_matches(folded, limit, found, add):
    tokens = folded.split()
    seen = [pk for (kind, pk) in found if kind == "user"]
    # No ORDER BY: the trigram index finds candidates and the scan stops at LIMIT;
    # this tier is ordered by name in Python.
    # lower() of an already folded name changes nothing but the expression: it
    # matches the trigram index (migration 0004) and no btree, so the planner
    # cannot mistake one kind of query for the other.
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        rows = _substring_rows(tokens, seen, limit)
    else:  # the queryset is built only here: building it costs a keystroke
        rows = _without_seq_scan(
            _active_users()
            .annotate(search_lower=Lower("search_name"))
            .filter(_word_conditions("search_lower", tokens))
            .exclude(pk__in=seen)
            .values_list("pk", "search_name_rev")[:limit]
        )
    for pk, key in rows:
        add("user", pk, OTHER, key)


# The substring tier reads the users' table in page order (about 37 users a
# page) before it builds the trigram bitmap: first HEAD_PAGES pages; when they
# hold at least MIN_HEAD_MATCHES matches (a common substring, whose bitmap is
# the costliest: 4-10 ms at a million users), on up to page EXTEND_PAGES; the
# bitmap only when that still gives fewer than a page of results. A rare
# substring (a full name) costs the head more than the bitmap alone (< 1 ms
# at 32 pages); a common one a fraction of its bitmap.
HEAD_PAGES = 32
EXTEND_PAGES = 256
MIN_HEAD_MATCHES = 4


def _substring_rows(tokens, seen, limit):
    """Return the substring tier's (pk, search_name_rev) rows on PostgreSQL:
    the same rows as the bitmap query of _without_seq_scan() (the first `limit`
    matches in the table's page order, which is the order a bitmap heap scan
    returns), found by reading the table in page order (see HEAD_PAGES), and
    only when that finds fewer than `limit` matches by the trigram bitmap (a
    one-time filter: it is not built otherwise). One statement; SET LOCAL as
    in _without_seq_scan()."""
    quote = connection.ops.quote_name
    users = quote(User._meta.db_table)
    pk, name = (f"{users}.{quote(c)}" for c in ("id", "search_name_rev"))
    search_name = f"{users}.{quote('search_name')}"
    seen = [int(p) for p in seen]
    wheres, params = [], []
    # The pages read in order compare search_name || '': the same text as
    # lower(search_name) (folded names are lower case already) without the
    # cost of lower() per row, and an expression no index matches, so they are
    # always the range scan, never a second bitmap.
    for column in (f"({search_name}::text || '')", f"LOWER({search_name})"):
        condition, words = _words_sql(column, tokens)
        wheres.append(
            f"{users}.{quote('is_active')} AND ({condition}) AND NOT ({pk} = ANY(%s))"
        )
        params.append([*words, seen])
    in_head = "(SELECT count(*) FROM head)"
    sql = (
        f"WITH head AS (SELECT {pk}, {name} FROM {users} "  # noqa: S608 (names only)
        f"WHERE {users}.ctid < %s::tid AND {wheres[0]} LIMIT %s), "
        f"more AS (SELECT {pk}, {name} FROM {users} WHERE {users}.ctid >= %s::tid "
        f"AND {users}.ctid < %s::tid AND {wheres[0]} "
        f"AND {in_head} >= %s AND {in_head} < %s LIMIT (%s - {in_head})) "
        "SELECT 1, * FROM head UNION ALL SELECT 1, * FROM more UNION ALL "
        f"(SELECT 2, {pk}, {name} FROM {users} WHERE {wheres[1]} "
        f"AND {in_head} + (SELECT count(*) FROM more) < %s LIMIT %s)"
    )
    head, extended = f"({HEAD_PAGES},0)", f"({max(EXTEND_PAGES, HEAD_PAGES)},0)"
    with connection.cursor() as cursor:
        _execute(
            cursor,
            name=_statement_name("substrings", tokens),
            sql=sql,
            prefix=_BITMAP_ONLY,
            params=[
                head,
                *params[0],
                limit,
                head,
                extended,
                *params[0],
                MIN_HEAD_MATCHES,
                limit,
                limit,
                *params[1],
                limit,
                limit,
            ],
        )
        rows = cursor.fetchall()
    in_order = [row[1:] for row in rows if row[0] == 1]
    # Fewer than `limit` read in order: they are all there are in those pages,
    # so the bitmap's first `limit` rows (in page order) begin with them.
    return (
        in_order if len(in_order) >= limit else [row[1:] for row in rows if row[0] == 2]
    )


def _without_seq_scan(queryset):
    """Evaluate a LIMITed substring query through its trigram index.

    PostgreSQL cannot estimate how many names contain a substring; guessing
    many, it walks the table (or a whole btree) hoping to meet LIMIT rows early,
    and a miss then reads all of it (0.5 to 6 s at a million users). The
    trigram bitmap costs milliseconds whatever the answer. The settings go in
    the same statement string, which PostgreSQL runs as one implicit
    transaction, so SET LOCAL ends with it and the query count stays one.
    Inside an explicit transaction SET LOCAL would outlive the query, so there
    the query runs as it is (same answer, planner's choice).
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return list(queryset)
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(_BITMAP_ONLY + sql, params)
        return cursor.fetchall()


_BITMAP_ONLY = "SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off; "


def _group_and_department_matches(folded, limit, add):
    # One query for both small tables (a UNION), to keep the page's query budget.
    tokens = folded.split()
    condition = _word_conditions("search_name", tokens)
    groups = UserGroup.objects.filter(condition, is_public=True).annotate(
        kind=Value("group", output_field=CharField())
    )
    departments = Department.objects.filter(condition, is_public=True).annotate(
        kind=Value("department", output_field=CharField())
    )
    rows = (
        groups.order_by()
        .values_list("kind", "pk", "search_name")
        .union(
            departments.order_by().values_list("kind", "pk", "search_name"), all=True
        )
        .order_by("search_name", "pk")[: limit * 4]
    )
    for kind, pk, key in rows:
        add(kind, pk, NAME_PREFIX if key.startswith(folded) else OTHER, key)


def directory_entry_for_key(*, key: str) -> DirectoryEntry | None:
    """Return the entry for "user:12", "group:3" or "department:5"; None when the
    key is malformed, unknown, inactive or not public."""
    parsed = parse_key(key)
    if parsed is None:
        return None
    entries = entries_for_keys([parsed])
    return entries[0] if entries else None


def favorites_of(*, user) -> list[DirectoryEntry]:
    """Return the sender's favorites that can still be picked, sorted by name."""
    rows = Favorite.objects.filter(owner=user).values_list(
        "user_id", "group_id", "department_id"
    )
    keys = []
    for user_id, group_id, department_id in rows:
        if user_id:
            keys.append(("user", user_id))
        elif group_id:
            keys.append(("group", group_id))
        else:
            keys.append(("department", department_id))
    # A favorite group or department is listed (and pickable) even when it is
    # not public, such as a team starred for the sender.
    private_ok = {f"{kind}:{pk}" for kind, pk in keys}
    entries = entries_for_keys(keys, private_ok=private_ok)
    return sorted(entries, key=lambda e: (fold(e.name), _KIND_ORDER[e.kind], e.pk))


def favorite_keys_of(*, user) -> set[str]:
    """Return the keys ("user:12", ...) of the sender's favorites."""
    return favorite_keys(
        Favorite.objects.filter(owner=user).values_list(
            "user_id", "group_id", "department_id"
        )
    )


@dataclass(frozen=True)
class DetailedSearchPage:
    """One page of detailed-search results and the paginator's page."""

    entries: list
    page: object


def directory_detailed_search(
    *,
    kind: str,
    first_name: str = "",
    last_name: str = "",
    scheme: str = "",
    number: str = "",
    place: str = "",
    department: str = "",
    name: str = "",
    page: int | str = 1,
    per_page: int = MAX_RESULTS,
) -> DetailedSearchPage:
    """Return one page of users, public groups or public departments matching
    every criterion given; no criterion at all finds nothing."""
    if kind == "user":
        pks = _detailed_users(
            first_name=first_name,
            last_name=last_name,
            scheme=scheme,
            number=number,
            place=place,
            department=department,
        )
    elif kind in ("group", "department"):
        pks = _detailed_groups_or_departments(kind=kind, name=name, place=place)
    else:
        pks = None
    if pks is None:
        pks = User.objects.none().values_list("pk", flat=True)
    paginated = Paginator(pks, per_page).get_page(page)
    entries = entries_for_keys([(kind, pk) for pk in paginated.object_list])
    return DetailedSearchPage(entries=entries, page=paginated)


def _place_condition(place):
    place = place.strip()
    return Q(city__unaccent__istartswith=fold_accents(place)) | Q(
        postcode__istartswith=place
    )


def _detailed_users(*, first_name, last_name, scheme, number, place, department):
    users = _active_users()
    criteria = False
    if fold(first_name):
        users = users.exclude(first_name="").filter(
            search_name__startswith=fold_person_name(first_name)
        )
        criteria = True
    if fold(last_name):
        users = users.exclude(last_name="").filter(
            search_name_rev__startswith=fold_person_name(last_name)
        )
        criteria = True
    digits = _detailed_number_digits(scheme, number)
    if digits or scheme:
        numbers = PhysicianNumber.objects.all()
        if scheme:
            numbers = numbers.filter(scheme=scheme)
        if digits:
            numbers = numbers.filter(number_digits__startswith=digits)
        users = users.filter(pk__in=numbers.values("user_id"))
        criteria = True
    if place.strip():
        users = users.filter(_place_condition(place))
        criteria = True
    if fold(department):
        departments = Department.objects.filter(is_public=True).filter(
            Q(_word_conditions("search_name", fold(department).split()))
            | Q(code__iexact=department.strip())
        )
        users = users.filter(
            pk__in=Membership.objects.filter(department__in=departments).values(
                "user_id"
            )
        )
        criteria = True
    if not criteria:
        return None
    return users.order_by("search_name_rev", "pk").values_list("pk", flat=True)


def _detailed_number_digits(scheme, number):
    if scheme:
        return scheme_number_digits(scheme, number)
    match = _SCHEME_PREFIX.match(" ".join(number.split()))
    if match and match.group(1).upper() in SCHEME_ALIASES:
        return scheme_number_digits(SCHEME_ALIASES[match.group(1).upper()], number)
    return normalize_number(number)


def _detailed_groups_or_departments(*, kind, name, place):
    model = UserGroup if kind == "group" else Department
    rows = model.objects.filter(is_public=True)
    criteria = False
    if fold(name):
        rows = rows.filter(_word_conditions("search_name", fold(name).split()))
        criteria = True
    if place.strip():
        if kind == "group":
            rows = rows.filter(city__unaccent__istartswith=fold_accents(place.strip()))
        else:
            rows = rows.filter(_place_condition(place))
        criteria = True
    if not criteria:
        return None
    return rows.order_by("search_name", "pk").values_list("pk", flat=True)
