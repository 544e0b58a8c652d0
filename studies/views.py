from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .selectors import get_study_for_member


@login_required
def overview(request):
    return render(request, "studies/overview.html", {})


@login_required
def study_detail(request, study_id):
    study = get_study_for_member(user=request.user, study_id=study_id)
    return render(request, "studies/study.html", {"study": study})
