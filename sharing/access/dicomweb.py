"""A bucket's DICOMweb root: QIDO-RS and WADO-RS under /received/<id>/dicom-web/.

Every request is authorized by the same guard as the bucket's pages
(``guard.get_bucket_for_request``: logged in, the bucket's recipient, not
revoked, expired or locked, and its SMS code entered in this session). A
refusal carries no data: 401 without a login, 404 for a bucket that is not
the user's (or does not exist), 403 otherwise (including a missing SMS code),
each with an empty body. The studies are the bucket's share's; an anonymized
bucket is de-identified exactly as its download (the same Deidentifier, salt
and pseudonym), so QIDO lists and WADO accepts only de-identified UIDs, and
the instances its download leaves out are absent here too.

Audit: a retrieve (anything under WADO-RS: instances, metadata, frames,
rendered) records one DICOMWEB_RETRIEVED event per bucket, study and session
per hour (the first request of the hour, its kind in the details), so a
viewer's hundreds of frame requests make one line; searches (QIDO-RS) are not
audited.
"""

import functools
import hashlib

from django.core.cache import cache
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

from studies import dicomweb
from studies.deidentify import Deidentifier, deidentification_salt

from ..audit.record import audit_record
from ..models import AuditEvent, Pseudonym
from .guard import AccessRefused, CodeRequired, Refusal, get_bucket_for_request

AUDIT_PERIOD = 3600


def bucket_scope(bucket, studies=None):
    """Return the DicomwebScope of an authorized bucket (or of `studies` of it)."""
    studies = dicomweb.study_list(
        bucket.share.studies.all() if studies is None else studies
    )
    if not bucket.share.anonymize:
        return dicomweb.DicomwebScope(studies=studies)
    salt = deidentification_salt(f"bucket:{bucket.pk}")

    def deidentifier_for(study):
        pseudonym = Pseudonym.objects.for_patient(bucket=bucket, patient=study.patient)
        return Deidentifier(salt=salt, pseudonym=pseudonym)

    return dicomweb.DicomwebScope(
        studies=studies, anonymized=True, deidentifier_for=deidentifier_for
    )


def _refused(status):
    response = HttpResponse(status=status, content_type="text/plain")
    response._has_been_logged = True  # the guard audited it with its reason
    return response


def dicomweb_view(view):
    """Decorate a view of ``(request, bucket, scope, ...)`` under a bucket's root."""

    @functools.wraps(view)
    def wrapper(request, bucket_id, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
        if not request.user.is_authenticated:
            return _refused(401)
        try:
            bucket = get_bucket_for_request(request, bucket_id, page=False)
        except AccessRefused as refused:
            return _refused(404 if refused.reason == Refusal.NOT_RECIPIENT else 403)
        except CodeRequired:
            return _refused(403)
        try:
            return view(request, bucket, bucket_scope(bucket), **kwargs)
        except dicomweb.NotAcceptable:
            return HttpResponse(status=406)

    return never_cache(wrapper)


def audit_retrieve(request, *, bucket, study, kind):
    """Record a DICOMweb retrieve, once per bucket, study and session per hour."""
    session = request.session.session_key or ""
    digest = hashlib.sha256(f"{bucket.pk}:{study.pk}:{session}".encode()).hexdigest()
    if not cache.add(f"sharing.dicomweb.audited:{digest}", 1, AUDIT_PERIOD):
        return
    audit_record(
        action=AuditEvent.Action.DICOMWEB_RETRIEVED,
        request=request,
        bucket=bucket,
        studies=[study],
        details={"kind": kind, "anonymized": bucket.share.anonymize},
    )


# -- QIDO-RS ------------------------------------------------------------------------


@dicomweb_view
def search_studies(request, bucket, scope):
    query = dicomweb.qido_query(request.GET)
    return dicomweb.qido_response(dicomweb.qido_studies(scope, query), query)


@dicomweb_view
def search_series(request, bucket, scope, study=None):
    query = dicomweb.qido_query(request.GET)
    one = scope.study(study) if study else None
    return dicomweb.qido_response(dicomweb.qido_series(scope, query, one), query)


@dicomweb_view
def search_instances(request, bucket, scope, study=None, series=None):
    query = dicomweb.qido_query(request.GET)
    one, one_series = (None, None)
    if study:
        one, one_series, _ = scope.pick(study, series)
    return dicomweb.qido_response(
        dicomweb.qido_instances(scope, query, one, one_series), query
    )


# -- WADO-RS ------------------------------------------------------------------------


@dicomweb_view
def retrieve(request, bucket, scope, study, series=None, instance=None):
    """Retrieve a study, series or instance as multipart/related application/dicom."""
    one, one_series, one_instance = scope.pick(study, series, instance)
    instances = scope.instances_of(one, one_series, one_instance)
    response = dicomweb.retrieve_response(request, scope, one, instances)
    audit_retrieve(request, bucket=bucket, study=one, kind="instances")
    return response


@dicomweb_view
def retrieve_metadata(request, bucket, scope, study, series=None, instance=None):
    """Retrieve the metadata of a study, series or instance (application/dicom+json)."""
    one, one_series, one_instance = scope.pick(study, series, instance)
    instances = scope.instances_of(one, one_series, one_instance)
    response = dicomweb.metadata_response(request, scope, one, instances)
    audit_retrieve(request, bucket=bucket, study=one, kind="metadata")
    return response


@dicomweb_view
def retrieve_frames(request, bucket, scope, study, series, instance, frames):
    """Retrieve frames of an instance (multipart/related application/octet-stream)."""
    one, _, one_instance = scope.pick(study, series, instance)
    numbers = dicomweb.frame_numbers(frames, one_instance)
    response = dicomweb.frames_response(request, one_instance, numbers)
    audit_retrieve(request, bucket=bucket, study=one, kind="frames")
    return response


@dicomweb_view
def retrieve_rendered(request, bucket, scope, study, series, instance, frames="1"):
    """Retrieve an instance's frame rendered as PNG (or JPEG)."""
    one, _, one_instance = scope.pick(study, series, instance)
    numbers = dicomweb.frame_numbers(frames, one_instance)
    response = dicomweb.rendered_response(request, one_instance, numbers[0])
    audit_retrieve(request, bucket=bucket, study=one, kind="rendered")
    return response
