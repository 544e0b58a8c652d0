"""Buckets whose study holds real DICOM files, for the bucket viewer tests."""

import io
import zipfile

from django.urls import reverse
from pydicom.uid import generate_uid

from studies.models import Report
from tests.factories import SeriesFactory
from tests.sharing.access_helpers import make_bucket
from tests.studies.viewer_helpers import instance_create, study_file_bytes

REPORT_TEXT = "No pulmonary embolism. Nodule of 4 mm in the left lower lobe."
MESSAGE = "Please look at the left lower lobe."


def viewer_bucket(**kwargs):
    """Return a bucket of one study: 2 CT images, 1 MR image, a report, a message.

    The study, patient and files carry identifying values the de-identified
    download must lose: name Peeters^Jan, birth date 1970-05-17, an accession,
    an institution and a referring physician.
    """
    kwargs.setdefault("require_otp", False)
    kwargs.setdefault("message", MESSAGE)
    study_kwargs = {"accession_number": "ACC-5521", **kwargs.pop("study_kwargs", {})}
    bucket = make_bucket(study_kwargs=study_kwargs, **kwargs)
    study = bucket.share.studies.get()
    ct = study.series.get()
    ct.series_number, ct.modality = 1, "CT"
    ct.save()
    frame_of_reference = generate_uid()
    for number in (1, 2):
        data = study_file_bytes(
            "CT_small.dcm",
            study=study,
            series=ct,
            FrameOfReferenceUID=frame_of_reference,
            InstitutionName="AZ Sint-Jan Brugge",
            ReferringPhysicianName="Janssens^Marie",
        )
        instance_create(series=ct, data=data, number=number)
    mr = SeriesFactory(study=study, series_number=2, modality="MR", description="T1")
    instance_create(
        series=mr, data=study_file_bytes("MR_small.dcm", study=study, series=mr)
    )
    Report.objects.create(study=study, text=REPORT_TEXT)
    return bucket


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
