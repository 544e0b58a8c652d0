"""Run the directory's written-out statements as prepared statements on PostgreSQL.

The quick search answers every keystroke, and planning its statements (array
subqueries, lateral counts, a UNION ALL of four scans) cost PostgreSQL more
than running them: a statement prepared once per connection is planned once
(its generic plan holds for any value: primary keys, LIKE patterns of
substrings, which the trigram index takes as parameters, and name prefixes as
ranges of the byte-ordered folded columns). It is prepared in the same round
trip as its first execution, so a page's query count does not change.
"""

import itertools
import re
import weakref

from django.db import connection

# {database connection: {statement: the name it is prepared under}}. A new
# connection (CONN_MAX_AGE, a dropped one replaced) starts without any.
_PREPARED = weakref.WeakKeyDictionary()
_GENERATIONS = itertools.count(1)
_PLACEHOLDER = re.compile(r"%s")
_GENERIC = "SET LOCAL plan_cache_mode = force_generic_plan; "
_TYPES = {int: "bigint", str: "text", list: "bigint[]", type(None): "bigint"}


def numbered(sql):
    """Return `sql` with its %s placeholders (each value used once, in order)
    numbered $1, $2, ... as a prepared statement has them."""
    counter = itertools.count(1)
    return _PLACEHOLDER.sub(lambda _match: f"${next(counter)}", sql)


def execute_prepared(cursor, *, name, sql, params, types=None, prefix=""):
    """Execute `sql` (placeholders $1, $2, ...) with `params` on `cursor`
    through a statement prepared on this connection under `name`.

    `types` are the parameters' SQL types (by default bigint for an int or
    None, text for a str, bigint[] for a list); `prefix` runs before it in the
    same round trip (SET LOCAL: the implicit transaction of one query string).
    """
    if types is None:
        types = [_TYPES[type(value)] for value in params]
    prepared = _PREPARED.setdefault(connection.connection, {})
    known = prepared.get(name)
    statement = known or f"{name}_{next(_GENERATIONS)}"
    call = f"EXECUTE {statement}({', '.join(['%s'] * len(params))})"
    if known is None:
        # The statement's own text goes through the driver's %s interpolation.
        text = sql.replace("%", "%%")
        call = f"PREPARE {statement} ({', '.join(types)}) AS {text}; {call}"
    if not connection.in_atomic_block:
        # The generic plan, always: PostgreSQL's own choice compares estimates,
        # and its estimate of a generic plan (default selectivities) is too
        # high for the plan ever to be used. SET LOCAL ends with the query
        # string's implicit transaction; inside a transaction it would outlive
        # the statement, so there the choice is PostgreSQL's.
        prefix = f"{_GENERIC}{prefix}"
    try:
        cursor.execute(prefix.replace("%", "%%") + call, params)
    except Exception:
        # Whether the statement was prepared is unknown now: the next call
        # prepares it under a new name (a stale one goes with the connection).
        prepared.pop(name, None)
        raise
    prepared[name] = statement
