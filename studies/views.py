from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.shortcuts import render

from pacsshare.paginator import CappedPaginator

from .forms import OverviewFilterForm
from .rows import study_rows_html
from .selectors import (
    MODALITIES,
    studies_filter,
    studies_visible_to,
    with_overview_columns,
)


@login_required
def overview(request):
    """List the studies of the user's departments, newest first, with filters."""
    form = OverviewFilterForm(request.GET or None, modalities=MODALITIES)
    if form.is_bound:
        # Invalid fields are reported beside the form; the valid ones still apply.
        form.is_valid()
    visible = studies_filter(studies_visible_to(user=request.user), **form.filters())
    studies = with_overview_columns(visible).order_by(
        F("study_date").desc(nulls_last=True),
        F("study_time").desc(nulls_last=True),
        "-id",
    )
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
