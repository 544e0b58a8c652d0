"""Model queries whose SQL the ORM compiles once per process, then runs again.

Compiling a query of a few joined models (select_related, annotations,
subqueries) costs more Python than PostgreSQL takes to run it: on the bench the
received study's bucket read compiles in 3-4 ms and runs in 0.2 ms. A
`PreparedQuery` builds its queryset once per database and shape, with stand-in
numbers where the call's values go, keeps the SQL the ORM made and how its
rows become model instances (Django's own: `from_db`, select_related's
populators, annotations), and afterwards runs that SQL with each call's values.

The builder takes every value that changes between calls as an argument: an
int (an id), a date, an aware datetime, a `Text` (a string typed by a user) or
a list of one of these becomes a parameter of the statement (a list's length
is part of the shape); any other argument (a bool, a plain string, None)
selects a shape and is passed to the builder as it is, so keep their values
few. Anything the builder reads by itself (the time, a setting, the database)
is compiled in for good, and so is any decision the builder takes on a
parameter: it must only hand them to the ORM as they are (a shape may leave
some unused). A date or time the builder derives from one (the day before) is
refused, as is a value put into the SQL text. A `Text` may go to an exact
comparison or to a LIKE lookup (contains, startswith, ... and their i-forms),
whose pattern is made again from each call's value. Slices go into the SQL
text: never slice by an argument. prefetch_related is not supported.

`server_side` also saves PostgreSQL's planning: the statement is PREPAREd
once per connection and run with its generic plan (recipients.prepared), where
the planner took longer than the run; check its plan (EXPLAIN EXECUTE) first.

`only_on` names the database vendors the statement is kept on; on the others
every call builds and runs its queryset (a builder that must read the
database itself there, as expiry does on SQLite). On any database but
PostgreSQL a call with a date or a datetime among its values is built per call
too: SQLite's backend turns them into text before a stand-in can be found.
"""

import datetime
import itertools

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesIterable,
    get_related_populators,
)
from django.utils import timezone

# Stand-ins for the call's values while compiling: numbers no row has, days
# of a year no share has, and text no one types.
_STAND_IN_BASE = -7_316_540_000
_STAND_IN_TEXT = "731654"
_STAND_IN_YEAR = 1731
_STAND_IN_DAY = datetime.date(_STAND_IN_YEAR, 1, 1)
_STAND_IN_WORD = "\ue731731654w{}\ue731"
# The LIKE patterns Django's lookups make of a value (PatternLookup).
_PATTERNS = ("%{}%", "{}%", "%{}")


# Statements kept per query: past that a shape is built per call, so odd
# requests (fifty words searched) cannot fill the process's memory.
MAX_SHAPES = 256
_NUMBERS = itertools.count(1)
# The SQL types of parameters of a statement PostgreSQL prepares (server_side).
_SQL_TYPES = {
    bool: "boolean",
    int: "bigint",
    str: "text",
    datetime.date: "date",
    datetime.datetime: "timestamptz",
}


def _sql_type(value):
    """Return a parameter's SQL type, or None (not known)."""
    found = _SQL_TYPES.get(type(value))
    if found is None and isinstance(value, str):
        return "text"  # a TextChoices member
    return found


class Text(str):
    """A string that is a parameter of a prepared query (a searched word), not
    a shape: `PreparedQuery.all(word=Text(typed))`."""


class PreparedQuery:
    """A queryset built by `build(**values)`, compiled once per shape."""

    def __init__(self, build, *, only_on=None, server_side=False):
        self.build = build
        self.only_on = only_on
        self.server_side = server_side
        self._statements = {}

    def all(self, *, using=DEFAULT_DB_ALIAS, window=None, **values):
        """Return the query's rows for these values (a list): model instances,
        dicts of a values() queryset or the values of a flat values_list().

        `window`, a slice of the rows (start and stop), is cut by LIMIT and
        OFFSET parameters: a page of any number shares the page's statement.
        """
        statement = self._statement(using, values)
        if statement is None:
            queryset = self.build(**values).using(using)
            return list(queryset if window is None else queryset[window])
        return statement.run(using, values, window=window)

    def count(self, *, at_most, using=DEFAULT_DB_ALIAS, **values):
        """Return how many rows the query gives, counting no further than
        `at_most` (a parameter)."""
        statement = self._statement(using, values)
        if statement is None:
            return self.build(**values).using(using)[:at_most].count()
        return statement.count(using, values, at_most=at_most)

    def _statement(self, using, values):
        """Return the statement for these values' shape (None: build each call)."""
        vendor = connections[using].vendor
        if self.only_on is not None and vendor not in self.only_on:
            return None
        if vendor != "postgresql" and any(map(_has_time, values.values())):
            # SQLite's backend passes dates and times as text it formats
            # itself: no stand-in survives to be found again. Built per call.
            return None
        shape = tuple(
            (name, _shape_of(value)) for name, value in sorted(values.items())
        )
        # The current time zone goes into the SQL of dates (__date lookups).
        key = (using, vendor, timezone.get_current_timezone_name(), shape)
        statement = self._statements.get(key)
        if statement is None:
            if len(self._statements) >= MAX_SHAPES:
                return None  # many words typed, say: built per call, not kept
            statement = self._statements[key] = _Statement(self.build, using, values)
            statement.server_side = self.server_side and using == DEFAULT_DB_ALIAS
        return statement

    def first(self, *, using=DEFAULT_DB_ALIAS, **values):
        """Return the first instance or None (the builder slices to one row)."""
        rows = self.all(using=using, **values)
        return rows[0] if rows else None


def _has_time(value):
    """Return whether a value is, or lists, a date or a datetime."""
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, datetime.date) for v in value)
    return isinstance(value, datetime.date)


def padded(ids):
    """Return the ids sorted, as a list whose length is a power of two (the
    last repeated): an IN list of them takes few shapes. Only for a filter."""
    ids = sorted(ids)
    if not ids:
        return ids
    size = 1 << (len(ids) - 1).bit_length()
    return ids + ids[-1:] * (size - len(ids))


def _kind_of(value):
    """Return the kind of parameter a value is, or None (a shape value)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "id"
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError("A prepared query takes aware datetimes only.")
        return "datetime"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, Text):
        return "text"
    return None


def _shape_of(value):
    kind = _kind_of(value)
    if kind is not None:
        return kind
    if isinstance(value, (list, tuple)) and value:
        kinds = {_kind_of(v) for v in value}
        if len(kinds) == 1 and None not in kinds:
            return ("list", kinds.pop(), len(value))
    if isinstance(value, (list, tuple)) and not value:
        return ("list", None, 0)
    if isinstance(value, list):
        return ("as is", tuple(value))  # bools or plain strings: a shape
    return ("as is", value)


def _stand_in(kind, n):
    """Return the stand-in of the n-th parameter while compiling."""
    if kind == "id":
        return _STAND_IN_BASE - n
    if kind == "date":
        # Ten days apart: a day derived from one is no other's.
        return _STAND_IN_DAY + datetime.timedelta(days=10 * n)
    if kind == "datetime":
        return datetime.datetime.combine(
            _STAND_IN_DAY + datetime.timedelta(days=10 * n),
            datetime.time(12, 0, 0, 7),
            tzinfo=datetime.UTC,
        )
    return Text(_STAND_IN_WORD.format(n))


def _derived(param):
    """Return whether a parameter is a date, time or text made of a stand-in."""
    if isinstance(param, (datetime.date, datetime.datetime)):
        return param.year in range(_STAND_IN_YEAR - 1, _STAND_IN_YEAR + 2)
    if isinstance(param, str):
        return any(
            mark in param for mark in ("\ue731", _STAND_IN_TEXT, f"{_STAND_IN_YEAR}-")
        )
    return False


class _Statement:
    """One compiled shape: its SQL, where each value goes, how rows are read."""

    server_side = False

    def __init__(self, build, using, values):
        self.number = next(_NUMBERS)
        # Days and times count apart from ids and words, so however many ids
        # come first, their stand-ins stay in the years _derived looks at.
        counters = {True: itertools.count(), False: itertools.count()}

        def counter(kind):
            return next(counters[kind in ("date", "datetime")])

        # (type, stand-in) -> (name, index in a list or None)
        stand_ins = {}
        arguments = {}
        for name, value in values.items():
            shape = _shape_of(value)
            if isinstance(shape, str):
                stand_in = _stand_in(shape, counter(shape))
                stand_ins[_key(stand_in)] = (name, None)
                arguments[name] = stand_in
            elif shape[0] == "list":
                items = [_stand_in(shape[1], counter(shape[1])) for _ in value]
                stand_ins.update(
                    (_key(item), (name, index)) for index, item in enumerate(items)
                )
                arguments[name] = items
            else:
                arguments[name] = value
        words = {key[1]: slot for key, slot in stand_ins.items() if key[0] is Text}
        queryset = build(**arguments)
        if queryset._prefetch_related_lookups:
            raise ValueError("A prepared query cannot prefetch.")
        # A window or a count is cut around the statement's own text.
        self.sliced = queryset.query.is_sliced
        compiler = queryset.query.get_compiler(using=using)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            # No row whatever the values (an empty list of ids): no statement.
            self.sql = None
            return
        self.sql = sql
        # Each parameter: (name, None) or (name, index in the list) of the call's
        # values, or (None, the query's own constant); a LIKE pattern of a
        # Text also has the pattern its value goes into.
        self.params = []
        for p in params:
            slot = stand_ins.get(_key(p)) if _hashable(p) else None
            if slot is None and isinstance(p, str):
                slot = _pattern_slot(p, words)
            if slot is None:
                if _derived(p):
                    raise ValueError(f"{build!r} derived a parameter from a value.")
                slot = (None, p)
            self.params.append(slot)
        if _STAND_IN_TEXT in sql or f"{_STAND_IN_YEAR}-" in sql or "\ue731" in sql:
            # A value went into the SQL text: the statement would not hold for
            # other values.
            raise ValueError(f"{build!r} put a value into its SQL text.")
        select, klass_info = compiler.select, compiler.klass_info
        iterable = queryset._iterable_class
        self.kind = {
            ModelIterable: "models",
            ValuesIterable: "values",
            FlatValuesListIterable: "flat",
        }.get(iterable)
        if self.kind is None:
            raise ValueError("A prepared query gives models, values() or a flat list.")
        if self.kind == "values":
            query = queryset.query
            self.names = list(query.selected or ()) or [
                *query.extra_select,
                *query.values_select,
                *query.annotation_select,
            ]
        columns = [column[0] for column in select[0 : compiler.col_count]]
        self.converters = list(compiler.get_converters(columns).items())
        if self.kind != "models":
            return
        self.model = klass_info["model"]
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.model_slice = slice(start, end)
        self.init_list = [column[0].target.attname for column in select[start:end]]
        self.populators = get_related_populators(klass_info, select, using)
        self.annotations = list(compiler.annotation_col_map.items())

    def _params(self, connection, values):
        return [_value_of(slot, values, connection) for slot in self.params]

    def count(self, using, values, *, at_most):
        if self.sql is None:
            return 0
        if self.sliced:
            raise ValueError("A sliced query cannot be counted.")
        connection = connections[using]
        with connection.cursor() as cursor:
            self._execute(
                cursor,
                "count",
                # The statement is the ORM's own SQL; the limit a parameter.
                f"SELECT COUNT(*) FROM ({self.sql} LIMIT %s) counted",  # noqa: S608
                [*self._params(connection, values), at_most],
            )
            return cursor.fetchone()[0]

    def _execute(self, cursor, part, sql, params):
        """Run the SQL, as a statement PostgreSQL prepared (planned once per
        connection, its generic plan) where `server_side` asks and every
        parameter's type is known; else as the ORM runs it."""
        types = [_sql_type(value) for value in params]
        if (
            not self.server_side
            or cursor.db.vendor != "postgresql"
            or None in types
            or "%%" in sql
        ):
            cursor.execute(sql, params)
            return
        from recipients.prepared import execute_prepared, numbered

        execute_prepared(
            cursor,
            name=f"pq{self.number}_{part}",
            sql=numbered(sql),
            params=params,
            types=types,
        )

    def run(self, using, values, *, window=None):
        if self.sql is None:
            return []
        connection = connections[using]
        sql, params = self.sql, self._params(connection, values)
        if window is not None:
            if self.sliced:
                raise ValueError("A sliced query takes no window.")
            start, stop = window.start or 0, window.stop
            if start < 0 or stop is None or stop < start or window.step:
                raise ValueError("A window is a slice of a start and a stop.")
            if stop == start:
                return []  # as an empty slice of a queryset: no query
            sql = f"{sql} LIMIT %s OFFSET %s"
            params = [*params, stop - start, start]
        with connection.cursor() as cursor:
            self._execute(cursor, "rows" if window is None else "window", sql, params)
            rows = cursor.fetchall()
        objects = []
        for row in rows:
            if self.converters:
                row = list(row)
                for position, (functions, expression) in self.converters:
                    value = row[position]
                    for function in functions:
                        value = function(value, expression, connection)
                    row[position] = value
            if self.kind == "flat":
                objects.append(row[0])
                continue
            if self.kind == "values":
                objects.append(dict(zip(self.names, row, strict=True)))
                continue
            obj = self.model.from_db(using, self.init_list, row[self.model_slice])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, position in self.annotations:
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects


def _key(value):
    # 1 == True == 1.0 and a date equals no datetime, but a Text equals its
    # str: the type keeps stand-ins apart from the query's own constants.
    return (type(value), value)


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _pattern_slot(param, words):
    """Return the slot of a LIKE pattern made of a Text stand-in, or None."""
    for word, (name, item) in words.items():
        for pattern in _PATTERNS:
            if param == pattern.format(word):
                return (name, item, pattern)
    return None


def _value_of(slot, values, connection):
    name, item, *pattern = slot
    if name is None:
        return item  # the query's own constant
    value = values[name] if item is None else values[name][item]
    if pattern:
        # As Django's pattern lookups make it: the value's wildcards escaped.
        return pattern[0].format(connection.ops.prep_for_like_query(value))
    if isinstance(value, Text):
        return str(value)
    return value
