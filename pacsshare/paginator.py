"""A paginator that counts no further than it needs to.

An exact COUNT over a department's 50,000 studies costs more than the page it
numbers. CappedPaginator counts at most `cap` rows (or, on a later page, up to
that page): past that the list says "more than 1,000" and still offers the
next page, and the pager shows the page number without a total.
"""

import math

from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet, Window
from django.utils.functional import cached_property

COUNT_CAP = 1000
MAX_COUNTED_PAGES = 1000


class PreparedRows:
    """The rows of a prepared query (pacsshare.prepared) for these values, as
    CappedPaginator slices and counts them: a page is a window of the
    statement, the count that of `counted` (the same rows, unordered) or of
    the query itself."""

    ordered = True  # the query orders its rows (Paginator checks)

    def __init__(self, prepared, *, counted=None, **values):
        self.prepared, self.counted, self.values = prepared, counted, values

    def __getitem__(self, window):
        return self.prepared.all(window=window, **self.values)

    def count_at_most(self, at_most):
        return (self.counted or self.prepared).count(at_most=at_most, **self.values)


class CappedPaginator(Paginator):
    """Paginate a queryset with a LIMIT-ed count; `capped` says the count is a floor.

    `count_queryset` (the same rows, without the page's annotations and joins)
    is what is counted, when given.
    """

    def __init__(self, object_list, per_page, *, cap=COUNT_CAP, count_queryset=None):
        super().__init__(object_list, per_page)
        self.cap = cap
        self.limit = cap
        self.count_queryset = count_queryset

    def get_page(self, number):
        try:
            # A hostile page number counts no further than page 1,000's rows.
            asked = min(max(int(number), 1), MAX_COUNTED_PAGES)
        except (TypeError, ValueError, OverflowError):
            asked = 1
        # A later page counts up to itself, so its own rows are never cut off.
        self.limit = max(self.cap, asked * self.per_page)
        return super().get_page(number)

    def get_page_counting_rows(self, number):
        """Return a page whose rows bring the total along (COUNT(*) OVER ()).

        One query where get_page takes two, for a list whose every row the
        database reads anyway to order them (a user's received studies, not a
        department's 50,000). The total is exact, so nothing is capped. Past the
        last page, get_page answers as usual.
        """
        try:
            asked = min(max(int(number), 1), MAX_COUNTED_PAGES)
        except (TypeError, ValueError, OverflowError):
            asked = 1
        bottom = (asked - 1) * self.per_page
        rows_of = self.object_list
        if isinstance(rows_of, QuerySet):
            # PreparedRows bring their rows_total themselves.
            rows_of = rows_of.annotate(rows_total=Window(Count("*")))
        rows = list(rows_of[bottom : bottom + self.per_page])
        if not rows and bottom == 0:
            # No row at all (a new user's empty list): nothing more to count.
            self.count = self.limit = 0
            return Page(rows, 1, self)
        if not rows:
            return self.get_page(number)
        first = rows[0]
        total = first["rows_total"] if isinstance(first, dict) else first.rows_total
        self.count = self.limit = total
        return Page(rows, asked, self)

    @cached_property
    def count(self):
        rows = self.count_queryset
        if rows is None:
            rows = self.object_list
        if isinstance(rows, PreparedRows):
            return rows.count_at_most(self.limit + 1)
        return rows.order_by()[: self.limit + 1].count()

    @property
    def capped(self):
        """Return whether there are more rows than were counted."""
        return self.count > self.limit

    @cached_property
    def num_pages(self):
        if self.capped:
            # One page past the counted ones, so "Next" is offered.
            return math.ceil(self.limit / self.per_page) + 1
        return super().num_pages
