from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.shortcuts import render

from pacsshare.paginator import CappedPaginator, PreparedRows
from pacsshare.prepared import PreparedQuery, padded

from .forms import OverviewFilterForm
from .rows import study_rows_html
from .selectors import (
    MODALITIES,
    studies_filter,
    studies_of_departments,
    studies_visible_to,
    with_overview_columns,
)

# Newest first, undated last (study_overview_order_idx).
_ORDER = (
    F("study_date").desc(nulls_last=True),
    F("study_time").desc(nulls_last=True),
    "-id",
)


def _department_studies(*, department_ids):
    # Unordered: what the capped count counts.
    return studies_of_departments(department_ids=department_ids).order_by()


def _department_page(*, department_ids):
    return with_overview_columns(
        _department_studies(department_ids=department_ids)
    ).order_by(*_ORDER)


# The unfiltered overview, every clinician's first page: its page and its
# capped count compiled once per process (pacsshare.prepared), where the ORM's
# compiling cost more than PostgreSQL's run.
_DEPARTMENT_PAGE = PreparedQuery(_department_page)
_DEPARTMENT_COUNT = PreparedQuery(_department_studies)


@login_required
def overview(request):
    """List the studies of the user's departments, newest first, with filters."""
    form = OverviewFilterForm(request.GET or None, modalities=MODALITIES)
    if form.is_bound:
        # Invalid fields are reported beside the form; the valid ones still apply.
        form.is_valid()
    filters = form.filters()
    if filters:
        visible = studies_filter(studies_visible_to(user=request.user), **filters)
        studies = with_overview_columns(visible).order_by(*_ORDER)
    else:
        # A list of a power-of-two length: few statements for any number.
        department_ids = padded(request.user.department_ids)
        visible = PreparedRows(_DEPARTMENT_COUNT, department_ids=department_ids)
        studies = PreparedRows(_DEPARTMENT_PAGE, department_ids=department_ids)
    # A LIMIT-ed count: "more than 1,000 studies" rather than COUNT(*) of 50,000.
    page = CappedPaginator(
        studies, settings.OVERVIEW_PAGE_SIZE, count_queryset=visible
    ).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    return render(
        request,
        "studies/overview.html",
        {
            "form": form,
            "page": page,
            "studies": rows,
            "rows_html": study_rows_html(rows),
            "tab": "department",
        },
    )
