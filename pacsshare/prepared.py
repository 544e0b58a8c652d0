"""Model queries whose SQL the ORM compiles once per process, then runs again.

Compiling a query of a few joined models (select_related, annotations,
subqueries) costs more Python than PostgreSQL takes to run it: on the bench the
received study's bucket read compiles in 3-4 ms and runs in 0.2 ms. A
`PreparedQuery` builds its queryset once per database and shape, with stand-in
numbers where the call's values go, keeps the SQL the ORM made and how its
rows become model instances (Django's own: `from_db`, select_related's
populators, annotations), and afterwards runs that SQL with each call's values.

The builder takes every value that changes between calls as an argument: an
int (an id) or a list of ints becomes a parameter of the statement (a list's
length is part of the shape); any other argument (a bool, a string, None)
selects a shape and is passed to the builder as it is, so keep their values
few. Anything the builder reads by itself (the time, a setting, the database)
is compiled in for good, and so is any decision the builder takes on an id
(it must only hand ids to the ORM; a shape may leave some of them unused).
Slices go into the SQL text: never slice by an argument. prefetch_related is
not supported.
"""

import itertools

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesIterable,
    get_related_populators,
)

# Stand-ins for the call's ids while compiling: numbers no row has.
_STAND_IN_BASE = -7_316_540_000
_STAND_IN_TEXT = "731654"


class PreparedQuery:
    """A queryset built by `build(**values)`, compiled once per shape."""

    def __init__(self, build):
        self.build = build
        self._statements = {}

    def all(self, *, using=DEFAULT_DB_ALIAS, **values):
        """Return the query's rows for these values (a list): model instances,
        dicts of a values() queryset or the values of a flat values_list()."""
        shape = tuple(
            (name, _shape_of(value)) for name, value in sorted(values.items())
        )
        key = (using, connections[using].vendor, shape)
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = _Statement(self.build, using, values)
        return statement.run(using, values)

    def first(self, *, using=DEFAULT_DB_ALIAS, **values):
        """Return the first instance or None (the builder slices to one row)."""
        rows = self.all(using=using, **values)
        return rows[0] if rows else None


def _is_id(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _shape_of(value):
    if _is_id(value):
        return "id"
    if isinstance(value, (list, tuple)) and all(_is_id(v) for v in value):
        return ("ids", len(value))
    return ("as is", value)


class _Statement:
    """One compiled shape: its SQL, where each value goes, how rows are read."""

    def __init__(self, build, using, values):
        counter = itertools.count()
        stand_ins = {}  # stand-in number -> (name, index in a list or None)
        arguments = {}
        for name, value in values.items():
            if _is_id(value):
                number = _STAND_IN_BASE - next(counter)
                stand_ins[number] = (name, None)
                arguments[name] = number
            elif _shape_of(value)[0] == "ids":
                numbers = [_STAND_IN_BASE - next(counter) for _ in value]
                stand_ins.update(
                    (number, (name, index)) for index, number in enumerate(numbers)
                )
                arguments[name] = numbers
            else:
                arguments[name] = value
        queryset = build(**arguments)
        if queryset._prefetch_related_lookups:
            raise ValueError("A prepared query cannot prefetch.")
        compiler = queryset.query.get_compiler(using=using)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            # No row whatever the values (an empty list of ids): no statement.
            self.sql = None
            return
        self.sql = sql
        # Each parameter: (name, None) or (name, index in the list) of the call's
        # values, or (None, the query's own constant).
        self.params = [
            stand_ins[p] if type(p) is int and p in stand_ins else (None, p)
            for p in params
        ]
        if _STAND_IN_TEXT in sql:
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

    def run(self, using, values):
        if self.sql is None:
            return []
        params = [_value_of(slot, values) for slot in self.params]
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
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


def _value_of(slot, values):
    name, item = slot
    if name is None:
        return item  # the query's own constant
    return values[name] if item is None else values[name][item]
