"""Send to my PACS on the received study page: the POST, and the polled progress.

Both go through the bucket's one guard (`bucket_view`), so a user without the
bucket (or without its SMS code in this session) gets its refusal and no
transfer; the destination must be one of the user's own departments'.
"""

from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ..models import PacsTransfer
from .guard import bucket_view, get_study_of_bucket
from .pacs import destination_for, pacs_transfer_start


@bucket_view
@require_POST
def pacs_send(request, bucket, study_id):
    """Queue a transfer of the bucket's studies to the user's PACS; back to the page."""
    study = get_study_of_bucket(bucket, study_id)
    destination = destination_for(user=request.user, bucket=bucket)
    if destination is None:
        raise Http404("No DICOM destination in your departments.")
    pacs_transfer_start(bucket=bucket, user=request.user, destination=destination)
    url = reverse(
        "sharing:received_study", kwargs={"bucket_id": bucket.pk, "study_id": study.pk}
    )
    return redirect(f"{url}#send-to-pacs")


@bucket_view
@require_GET
def pacs_progress(request, bucket, study_id, transfer_id):
    """Return the progress fragment of one of this user's transfers of the bucket."""
    study = get_study_of_bucket(bucket, study_id)
    transfer = PacsTransfer.objects.filter(
        pk=transfer_id, bucket=bucket, user=request.user
    ).first()
    if transfer is None:
        raise Http404("No such transfer.")
    return render(
        request,
        "sharing/access/_pacs_progress.html",
        {"bucket": bucket, "study": study, "transfer": transfer},
    )
