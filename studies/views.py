from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F
from django.shortcuts import render

from .forms import OverviewFilterForm
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
    studies = studies_filter(studies_visible_to(user=request.user), **form.filters())
    studies = with_overview_columns(studies).order_by(
        F("study_date").desc(nulls_last=True),
        F("study_time").desc(nulls_last=True),
        "-id",
    )
    page = Paginator(studies, settings.OVERVIEW_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = list(page.object_list)
    for study in rows:
        study.modality_list = [m for m in study.modalities.split(",") if m]
    return render(
        request,
        "studies/overview.html",
        {"form": form, "page": page, "studies": rows, "tab": "department"},
    )
