"""The overview's "Search the PACS" tab: search the department's DICOMweb source,
bring a study in, and follow its progress.

Only members of the source's department reach any of it: every view takes the
sources (and imports) of the user's own departments, and nothing else.
"""

import re

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from .dicomnet.bring_in import dicomweb_import_start
from .dicomnet.source import SourceError, source_host, source_search
from .forms import PacsSearchForm
from .models import DicomWebImport, DicomWebSource, Study

UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")


def sources_of(user):
    """Return the DICOMweb sources of the user's departments."""
    return list(
        DicomWebSource.objects.filter(department_id__in=user.department_ids)
        .select_related("department")
        .order_by("department__name")
    )


def _import_of(request, import_id):
    row = (
        DicomWebImport.objects.filter(
            pk=import_id, department_id__in=request.user.department_ids
        )
        .select_related("department", "study")
        .first()
    )
    if row is None:
        raise Http404("No such import.")
    return row


@login_required
@require_GET
def pacs_search(request):
    """Search the PACS of the user's department; list what it holds."""
    sources = sources_of(request.user)
    if not sources:
        raise Http404("No DICOMweb source for your departments.")
    form = PacsSearchForm(request.GET or None, sources=sources)
    results, more, error, source = None, False, "", sources[0]
    if form.is_bound and form.is_valid():
        source = form.source
        try:
            results, more = source_search(source=source, **form.criteria())
        except SourceError as exc:
            error = str(exc)
    rows = []
    if results:
        uids = [r.study_instance_uid for r in results]
        here = dict(
            Study.objects.filter(
                department=source.department, study_instance_uid__in=uids
            ).values_list("study_instance_uid", "pk")
        )
        coming = dict(
            DicomWebImport.objects.filter(
                department=source.department,
                study_instance_uid__in=uids,
                status__in=[
                    DicomWebImport.Status.PENDING,
                    DicomWebImport.Status.RUNNING,
                ],
            ).values_list("study_instance_uid", "pk")
        )
        rows = [
            {
                "study": r,
                "local_id": here.get(r.study_instance_uid),
                "import_id": coming.get(r.study_instance_uid),
            }
            for r in results
        ]
    return render(
        request,
        "studies/pacs_search.html",
        {
            "tab": "pacs",
            "form": form,
            "source": source,
            "source_host": source_host(source),
            "rows": rows,
            "searched": results is not None,
            "more": more,
            "error": error,
        },
    )


@login_required
@require_POST
def pacs_bring_in(request):
    """Start bringing one study in from the PACS; show its progress."""
    uid = request.POST.get("study_instance_uid", "").strip()
    department_id = request.POST.get("department", "")
    if not (uid and len(uid) <= 64 and UID_RE.fullmatch(uid)):
        raise Http404("No such study.")
    source = next(
        (s for s in sources_of(request.user) if str(s.department_id) == department_id),
        None,
    )
    if source is None:
        raise Http404("No DICOMweb source of yours.")
    row = dicomweb_import_start(
        source=source, user=request.user, study_instance_uid=uid
    )
    return redirect("studies:pacs_import", import_id=row.pk)


@login_required
@require_GET
def pacs_import(request, import_id):
    """Show a bring-in: n of N images, then the study (or what went wrong)."""
    row = _import_of(request, import_id)
    return render(request, "studies/pacs_import.html", {"tab": "pacs", "row": row})


@login_required
@require_GET
def pacs_import_progress(request, import_id):
    """Return the progress fragment the status page polls."""
    row = _import_of(request, import_id)
    return render(request, "studies/_pacs_import_progress.html", {"row": row})
