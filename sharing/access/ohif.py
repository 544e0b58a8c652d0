"""OHIF on a bucket: its page and its configuration, both behind the bucket's guard.

The page is OHIF's index.html (studies/ohif.py) at /received/<id>/ohif/ and
any route under it (OHIF's router has that base), loading the bucket's own
app-config.js, whose only data source is the bucket's DICOMweb root
(sharing/access/dicomweb.py), itself guarded on every request. The "Open in
OHIF" button of the received study links to
/received/<id>/ohif/viewer?StudyInstanceUIDs=<the study's UID as the bucket
shows it>.
"""

from django.urls import reverse

from studies import ohif

from .dicomweb import bucket_scope
from .guard import bucket_view


def ohif_root(bucket):
    return reverse("sharing:ohif", kwargs={"bucket_id": bucket.pk}).rstrip("/")


def dicomweb_root(bucket):
    return reverse("sharing:dicomweb_studies", kwargs={"bucket_id": bucket.pk})[
        : -len("/studies")
    ]


def ohif_study_url(bucket, study, scope):
    """Return the URL that opens OHIF on one study of an (authorized) bucket."""
    uid = scope.shown_uid(study, study.study_instance_uid)
    return f"{ohif_root(bucket)}/viewer?StudyInstanceUIDs={uid}"


@bucket_view
def ohif_page(request, bucket, route=""):
    """Show OHIF on the bucket (any of OHIF's routes)."""
    return ohif.ohif_index_response(
        request,
        config_url=reverse("sharing:ohif_config", kwargs={"bucket_id": bucket.pk}),
    )


@bucket_view
def ohif_config(request, bucket):
    """Serve the bucket's app-config.js: OHIF's router base and DICOMweb root."""
    return ohif.ohif_config_response(
        router_basename=ohif_root(bucket),
        dicomweb_root=request.build_absolute_uri(dicomweb_root(bucket)),
        name="PACSshare",
    )


def open_in_ohif_url(bucket, study):
    """Return the "Open in OHIF" link of a received study, or None without OHIF."""
    if not ohif.ohif_installed():
        return None
    # The study's UID as the bucket shows it: the scope of that one study will do.
    return ohif_study_url(bucket, study, bucket_scope(bucket, [study]))
