"""Stream a study as a ZIP of DICOM files, optionally de-identified.

The ZIP is written to the response as it is built (one file in memory at a
time). File names carry series and instance numbers only, never a patient name.
A file that cannot be parsed is copied as is in a plain download, and left out
of a de-identified one (it could not be cleaned).
"""

from __future__ import annotations

import io
import logging
import zipfile

from django.http import StreamingHttpResponse

from .models import Instance
from .rendering import dataset_read

logger = logging.getLogger(__name__)


class _Pipe(io.RawIOBase):
    """A write-only stream whose written bytes the generator hands out."""

    def __init__(self):
        super().__init__()
        self._chunks = []

    def writable(self):
        return True

    def write(self, data):
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self):
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _dataset_bytes(ds):
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _instances(study):
    return (
        Instance.objects.filter(series__study=study)
        .select_related("series")
        .order_by("series__series_number", "series_id", "instance_number", "id")
    )


def study_zip_chunks(*, study, deidentifier=None, extra_datasets=()):
    """Yield the bytes of a ZIP of the study's files (plus extra data sets).

    With a ``deidentify.Deidentifier`` every file is de-identified (those that
    cannot be cleaned are left out, see ``Instance.is_cleanable``) and the
    extra data sets (the message SR, built with the pseudonym) get their UIDs
    mapped the same way, so they stay in the de-identified study.
    """
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        series_index = {}
        instances = _instances(study)
        if deidentifier is not None:
            # What cannot be cleaned (documents, burned-in text) stays out.
            instances = [i for i in instances if i.is_cleanable]
        for position, instance in enumerate(instances, start=1):
            folder = series_index.setdefault(
                instance.series_id, f"S{len(series_index) + 1:03d}"
            )
            name = f"DICOM/{folder}/I{position:05d}.dcm"
            data = instance_file_bytes(instance, deidentifier)
            if data is None:
                continue
            archive.writestr(name, data, compresslevel=1)
            yield pipe.drain()
        for number, ds in enumerate(extra_datasets, start=1):
            if deidentifier is not None:
                deidentifier.remap_uids(ds)
            archive.writestr(f"DICOM/MSG/M{number:05d}.dcm", _dataset_bytes(ds))
            yield pipe.drain()
    yield pipe.drain()


def instance_file_bytes(instance, deidentifier):
    """Return an instance's file as a recipient gets it: as stored, or
    de-identified (None when it cannot be: it is left out)."""
    with instance.file.open("rb") as fh:
        raw = fh.read()
    if deidentifier is None:
        return raw
    try:
        ds = dataset_read(raw)  # also repairs a missing transfer syntax
        deidentifier.apply(ds)
        return _dataset_bytes(ds)
    except Exception:
        # An unreadable file cannot be cleaned: leave it out rather than leak.
        logger.warning("download: cannot de-identify instance %s", instance.pk)
        return None


def study_zip_response(*, study, deidentifier=None, extra_datasets=(), filename=None):
    """Return a streaming response with the study's ZIP as an attachment."""
    response = StreamingHttpResponse(
        study_zip_chunks(
            study=study, deidentifier=deidentifier, extra_datasets=extra_datasets
        ),
        content_type="application/zip",
    )
    filename = filename or f"study-{study.pk}.zip"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    response["Vary"] = "Cookie"
    return response


def study_download_response(
    *,
    study,
    pseudonym=None,
    salt=None,
    message="",
    message_sender=None,
    message_sent_at=None,
    message_uid_seed=None,
):
    """Return the study's ZIP as a recipient gets it: with the message instance,
    de-identified when a pseudonym is given (``salt``: one per bucket, see
    ``deidentify.deidentification_salt``)."""
    from .deidentify import Deidentifier
    from .message_sr import message_sr_build

    deidentifier = None
    if pseudonym is not None:
        if not salt:
            raise ValueError("a de-identified download needs a salt")
        deidentifier = Deidentifier(salt=salt, pseudonym=pseudonym)
    extra = []
    if message:
        extra.append(
            message_sr_build(
                study=study,
                text=message,
                sender=message_sender,
                sent_at=message_sent_at,
                pseudonym=pseudonym,
                uid_seed=message_uid_seed,
            )
        )
    return study_zip_response(
        study=study,
        deidentifier=deidentifier,
        extra_datasets=extra,
        filename="study.zip" if pseudonym is not None else None,
    )
