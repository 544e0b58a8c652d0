"""The bucket viewer's URLs and answers; its buckets come from ``viewer_bucket()``
in tests/factories.py."""

import io
import zipfile

from django.urls import reverse


def study_of(bucket):
    return bucket.share.studies.get()


def viewer_urls(bucket, study=None):
    """Return every URL of the bucket viewer for its study, by name."""
    study = study or study_of(bucket)
    ct, mr = study.series.order_by("series_number")
    instance = ct.instances.order_by("instance_number").first()
    ids = {"bucket_id": bucket.pk, "study_id": study.pk}
    return {
        "study": reverse("sharing:received_study", kwargs=ids),
        "series": reverse(
            "sharing:received_series", kwargs={**ids, "series_id": mr.pk}
        ),
        "message": reverse("sharing:received_message", kwargs=ids),
        "thumbnail": reverse(
            "sharing:received_thumbnail", kwargs={**ids, "series_id": ct.pk}
        ),
        "frame": reverse(
            "sharing:received_frame",
            kwargs={**ids, "instance_id": instance.pk, "frame": 0, "fmt": "png"},
        ),
        "download": reverse("sharing:received_download", kwargs=ids),
        "report": reverse("sharing:received_report", kwargs=ids),
    }


def zip_of(response):
    body = b"".join(response.streaming_content)
    return zipfile.ZipFile(io.BytesIO(body))
