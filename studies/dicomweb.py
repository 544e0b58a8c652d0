"""DICOMweb (PS3.18) building blocks: QIDO-RS search and WADO-RS retrieve.

Nothing here knows who asks. A caller that has authorized the request (a
bucket's DICOMweb root in sharing/access/dicomweb.py) hands a ``DicomwebScope``:
the studies that root reaches and, for an anonymized share, the
``deidentify.Deidentifier`` of each study. The scope then:

- answers QIDO-RS from the database (no file is read): one data set per study,
  series or instance, de-identified by the same Deidentifier as the files, so a
  search shows the UIDs, pseudonym and dummies the retrieved files carry;
- maps the UIDs a client sends back to the stored objects (an anonymized scope
  knows only the de-identified UIDs, and never the instances an anonymized share
  leaves out);
- streams WADO-RS: instances as ``multipart/related; type="application/dicom"``
  (the stored file byte for byte, or its de-identified copy exactly as the
  download makes it), metadata as ``application/dicom+json`` (PS3.18 F.2, pixel
  data left out), frames as ``multipart/related; type="application/octet-stream"``
  and rendered frames as PNG or JPEG.

Responses stream one instance at a time (bounded memory, however big a study).
"""

from __future__ import annotations

import fnmatch
import io
import json
import logging
import secrets
from dataclasses import dataclass, field

import pydicom
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, StreamingHttpResponse
from PIL import Image
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from . import rendering
from .deidentify import left_out_q
from .download import instance_file_bytes
from .models import Instance, Series

logger = logging.getLogger(__name__)

DICOM_JSON = "application/dicom+json"
DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"
CHUNK_SIZE = 256 * 1024
MAX_LIMIT = 1000
NATIVE_SYNTAXES = {
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
}


class NotAcceptable(Exception):
    """The client accepts none of the media types this resource can answer in."""


# -- the scope: what one DICOMweb root reaches ------------------------------------


@dataclass
class DicomwebScope:
    """The studies one DICOMweb root serves, and how each is de-identified.

    ``deidentifier_for(study)`` returns the study's Deidentifier for an
    anonymized root (``anonymized=True``), else it is never called.
    """

    studies: list
    anonymized: bool = False
    deidentifier_for: object = None
    _deidentifiers: dict = field(default_factory=dict)

    def deidentifier(self, study):
        if not self.anonymized:
            return None
        if study.pk not in self._deidentifiers:
            self._deidentifiers[study.pk] = self.deidentifier_for(study)
        return self._deidentifiers[study.pk]

    def shown_uid(self, study, uid):
        """Return a UID of the study as this root shows it."""
        deidentifier = self.deidentifier(study)
        return deidentifier.uid(uid) if deidentifier is not None else uid

    def instances(self, study):
        """Return the study's instances this root serves (left-out ones excluded)."""
        instances = Instance.objects.filter(series__study=study)
        if self.anonymized:
            instances = instances.exclude(left_out_q())
        return instances.select_related("series").order_by(
            "series__series_number", "series_id", "instance_number", "id"
        )

    def series(self, study):
        """Return the study's series this root serves, each with ``served`` count."""
        served = Q(instances__isnull=False)
        if self.anonymized:
            served &= ~left_out_q("instances__")
        return (
            Series.objects.filter(study=study)
            .annotate(served=Count("instances", filter=served))
            .filter(served__gt=0)
            .order_by("series_number", "id")
        )

    def study(self, uid):
        """Return the study shown with this UID, or raise Http404."""
        for study in self.studies:
            if self.shown_uid(study, study.study_instance_uid) == uid:
                return study
        raise Http404("No such study here.")

    def one_series(self, study, uid):
        for series in self.series(study):
            if self.shown_uid(study, series.series_instance_uid) == uid:
                return series
        raise Http404("No such series here.")

    def one_instance(self, study, series, uid):
        instances = self.instances(study).filter(series=series)
        if not self.anonymized:
            instance = instances.filter(sop_instance_uid=uid).first()
        else:
            instance = next(
                (
                    i
                    for i in instances
                    if self.shown_uid(study, i.sop_instance_uid) == uid
                ),
                None,
            )
        if instance is None:
            raise Http404("No such instance here.")
        return instance

    def pick(self, study_uid=None, series_uid=None, instance_uid=None):
        """Return (study, series or None, instance or None) for a resource path."""
        study = self.study(study_uid)
        series = self.one_series(study, series_uid) if series_uid else None
        instance = (
            self.one_instance(study, series, instance_uid) if instance_uid else None
        )
        return study, series, instance

    def instances_of(self, study, series=None, instance=None):
        """Return the instances a retrieve of study, series or instance covers."""
        if instance is not None:
            return [instance]
        instances = self.instances(study)
        if series is not None:
            instances = instances.filter(series=series)
        return instances


# -- QIDO-RS: search ------------------------------------------------------------


def _set(ds, keyword, value):
    if value is None or value == "":
        ds.add_new(tag_for_keyword(keyword), dictionary_VR(keyword), None)
    else:
        setattr(ds, keyword, value)


def _da(value):
    return value.strftime("%Y%m%d") if value else None


def _tm(value):
    return value.strftime("%H%M%S") if value else None


def _shown(scope, study, ds):
    deidentifier = scope.deidentifier(study)
    if deidentifier is not None:
        deidentifier.apply(ds)
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    return ds


def study_dataset(scope, study, series_list):
    """Return the QIDO-RS attributes of a study (Study Root, PS3.18 Table 10.6.3-3)."""
    patient = study.patient
    ds = Dataset()
    _set(ds, "StudyDate", _da(study.study_date))
    _set(ds, "StudyTime", _tm(study.study_time))
    _set(ds, "AccessionNumber", study.accession_number)
    modalities = sorted({s.modality for s in series_list if s.modality})
    _set(ds, "ModalitiesInStudy", modalities or None)
    _set(ds, "ReferringPhysicianName", study.referring_physician)
    _set(ds, "StudyDescription", study.description)
    name = "^".join(p for p in (patient.family_name, patient.given_name) if p)
    _set(ds, "PatientName", name)
    _set(ds, "PatientID", patient.patient_id)
    _set(ds, "PatientBirthDate", _da(patient.birth_date))
    _set(ds, "PatientSex", patient.sex)
    _set(ds, "StudyInstanceUID", study.study_instance_uid)
    _set(ds, "StudyID", None)
    ds.NumberOfStudyRelatedSeries = len(series_list)
    ds.NumberOfStudyRelatedInstances = sum(s.served for s in series_list)
    return _shown(scope, study, ds)


def series_dataset(scope, study, series):
    """Return the QIDO-RS attributes of a series (PS3.18 Table 10.6.3-4)."""
    ds = Dataset()
    _set(ds, "Modality", series.modality)
    _set(ds, "SeriesDescription", series.description)
    _set(ds, "StudyInstanceUID", study.study_instance_uid)
    _set(ds, "SeriesInstanceUID", series.series_instance_uid)
    _set(ds, "SeriesNumber", series.series_number)
    ds.NumberOfSeriesRelatedInstances = series.served
    return _shown(scope, study, ds)


def instance_dataset(scope, study, instance):
    """Return the QIDO-RS attributes of an instance (PS3.18 Table 10.6.3-5)."""
    ds = Dataset()
    _set(ds, "SOPClassUID", instance.sop_class_uid)
    _set(ds, "SOPInstanceUID", instance.sop_instance_uid)
    _set(ds, "Modality", instance.series.modality)
    _set(ds, "StudyInstanceUID", study.study_instance_uid)
    _set(ds, "SeriesInstanceUID", instance.series.series_instance_uid)
    _set(ds, "SeriesNumber", instance.series.series_number)
    _set(ds, "InstanceNumber", instance.instance_number)
    _set(ds, "Rows", instance.rows)
    _set(ds, "Columns", instance.columns)
    if instance.has_pixels:
        ds.NumberOfFrames = instance.frame_count
    return _shown(scope, study, ds)


@dataclass
class QidoQuery:
    """A QIDO-RS query: matching keys (keyword → value), limit and offset."""

    filters: dict
    limit: int | None = None
    offset: int = 0


def qido_query(params):
    """Parse a QIDO-RS query string (a QueryDict); unknown keys are ignored.

    Matching keys are keywords or tags (``PatientID``, ``00100020``);
    ``includefield`` is accepted and every attribute this server knows is
    returned anyway; ``fuzzymatching`` is ignored.
    """
    filters = {}
    for key in params:
        if key in ("limit", "offset", "includefield", "fuzzymatching"):
            continue
        keyword = key
        if len(key) == 8 and all(c in "0123456789abcdefABCDEF" for c in key):
            keyword = keyword_for_tag(int(key, 16)) or ""
        if keyword and tag_for_keyword(keyword) is not None:
            filters[keyword] = params.getlist(key)
    return QidoQuery(
        filters=filters,
        limit=_int_param(params.get("limit"), maximum=MAX_LIMIT),
        offset=_int_param(params.get("offset")) or 0,
    )


def _int_param(value, *, maximum=None):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    number = max(number, 0)
    return min(number, maximum) if maximum else number


def _values(elem):
    value = elem.value
    if value is None or value == "":
        return []
    if isinstance(value, pydicom.multival.MultiValue | list):
        return [str(v) for v in value]
    return [str(value)]


def _match_one(elem, wanted):
    wanted = wanted.strip()
    if not wanted or wanted == "*":
        return True
    values = _values(elem)
    if elem.VR == "UI":
        asked = {u.strip() for u in wanted.replace("\\", ",").split(",") if u.strip()}
        return any(v in asked for v in values)
    if elem.VR in ("DA", "TM", "DT") and "-" in wanted:
        low, _, high = wanted.partition("-")
        return any((not low or v >= low) and (not high or v <= high) for v in values)
    if elem.VR == "PN" or "*" in wanted or "?" in wanted:
        pattern = wanted.lower() if elem.VR == "PN" else wanted
        pattern = pattern.replace("[", "[[]")
        return any(
            fnmatch.fnmatchcase(v.lower() if elem.VR == "PN" else v, pattern)
            for v in values
        )
    return any(v == wanted for v in values)


def qido_match(ds, query):
    """Say whether a data set matches every key of the query it carries."""
    for keyword, wanted_values in query.filters.items():
        if keyword not in ds:
            continue  # not a key of this level: not used for matching
        elem = ds[keyword]
        if not all(_match_one(elem, wanted) for wanted in wanted_values):
            return False
    return True


def qido_response(datasets, query):
    """Return the matching data sets as application/dicom+json (204 when none)."""
    matched = (ds for ds in datasets if qido_match(ds, query))
    results = []
    for position, ds in enumerate(matched):
        if position < query.offset:
            continue
        if query.limit is not None and len(results) >= query.limit:
            break
        results.append(ds.to_json_dict(suppress_invalid_tags=True))
    if not results:
        return HttpResponse(status=204)
    return HttpResponse(json.dumps(results), content_type=DICOM_JSON)


def qido_studies(scope, query):
    """Yield the data set of every study of the scope (newest first)."""
    for study in scope.studies:
        series_list = list(scope.series(study))
        if series_list or not scope.anonymized:
            yield study_dataset(scope, study, series_list)


def qido_series(scope, query, study=None):
    """Yield the data set of every series of one study, or of the scope."""
    for one in [study] if study is not None else scope.studies:
        for series in scope.series(one):
            yield series_dataset(scope, one, series)


def qido_instances(scope, query, study=None, series=None):
    """Yield the data set of every instance of a series, a study, or the scope."""
    for one in [study] if study is not None else scope.studies:
        instances = scope.instances(one)
        if series is not None:
            instances = instances.filter(series=series)
        for instance in instances.iterator(chunk_size=500):
            yield instance_dataset(scope, one, instance)


# -- WADO-RS: retrieve ----------------------------------------------------------


def _boundary():
    return secrets.token_hex(16)


def multipart_chunks(parts, boundary):
    """Yield a multipart/related body; ``parts`` yields (content type, chunks)."""
    for content_type, chunks in parts:
        yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        yield from chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def coalesced(chunks, size=CHUNK_SIZE):
    """Yield the chunks joined into pieces of about ``size`` bytes.

    A part's small header and trailer written on their own would each be a
    socket write; many small writes make a streamed study several times slower
    (and Nagle's algorithm meets delayed ACKs).
    """
    pending, length = [], 0
    for chunk in chunks:
        pending.append(chunk)
        length += len(chunk)
        if length >= size:
            yield b"".join(pending)
            pending, length = [], 0
    if pending:
        yield b"".join(pending)


def multipart_response(parts, *, media_type, streaming=True):
    """Return a multipart/related response of ``parts`` (see multipart_chunks)."""
    boundary = _boundary()
    content_type = f'multipart/related; type="{media_type}"; boundary={boundary}'
    body = coalesced(multipart_chunks(parts, boundary))
    if streaming:
        return StreamingHttpResponse(body, content_type=content_type)
    return HttpResponse(b"".join(body), content_type=content_type)


def _file_chunks(storage, name):
    with storage.open(name, "rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            yield chunk


def _stored_names(instances):
    """Return the instances' stored file names, in order.

    A queryset gives the names alone: building a model (and its series) per
    row would cost more than reading a small file.
    """
    if hasattr(instances, "values_list"):
        return instances.values_list("file", flat=True)
    return [instance.file.name for instance in instances]


def instance_parts(scope, study, instances):
    """Yield (content type, chunks) of each instance as a client receives it."""
    deidentifier = scope.deidentifier(study)
    if deidentifier is None:
        storage = Instance._meta.get_field("file").storage
        for name in _stored_names(instances):
            yield DICOM, _file_chunks(storage, name)
        return
    for instance in instances:
        data = instance_file_bytes(instance, deidentifier)
        if data is not None:
            yield DICOM, [data]


def accepts(request, media_type):
    """Say whether the Accept header allows ``media_type`` (absent: anything).

    ``media_type`` is the media type of the body or, for a multipart/related
    body, of its parts (``multipart/related; type=...`` with ``*/*`` allowed).
    """
    header = request.headers.get("Accept", "")
    if not header.strip():
        return True
    wanted = {"*/*", media_type, media_type.split("/")[0] + "/*"}
    for item in header.lower().replace('"', "").split(","):
        base, *params = (p.strip() for p in item.split(";"))
        if base in wanted:
            return True
        if base == "multipart/related":
            types = [p[len("type=") :] for p in params if p.startswith("type=")]
            if not types or types[0] in wanted:
                return True
    return False


def retrieve_response(request, scope, study, instances):
    """Return the instances as multipart/related; type="application/dicom"."""
    if not accepts(request, DICOM):
        raise NotAcceptable(DICOM)
    return multipart_response(instance_parts(scope, study, instances), media_type=DICOM)


def _header_dataset(instance):
    with instance.file.open("rb") as fh:
        ds = pydicom.dcmread(fh, force=True, stop_before_pixels=True)
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None:
        implicit, little = ds.original_encoding
        syntax = (
            ImplicitVRLittleEndian
            if implicit
            else ExplicitVRBigEndian
            if little is False
            else ExplicitVRLittleEndian
        )
    return ds, str(syntax)


def instance_metadata(scope, study, instance):
    """Return the PS3.18 F.2 JSON of one instance (pixel data left out)."""
    ds, syntax = _header_dataset(instance)
    deidentifier = scope.deidentifier(study)
    if deidentifier is not None:
        deidentifier.apply(ds)
    # Clients pick a frame request's transfer syntax from this (PS3.18 10.4.1.2).
    ds.AvailableTransferSyntaxUID = syntax
    return ds.to_json_dict(suppress_invalid_tags=True)


def metadata_chunks(scope, study, instances):
    """Yield a JSON array of the instances' metadata, one instance at a time."""
    yield from coalesced(_metadata_items(scope, study, instances))


def _metadata_items(scope, study, instances):
    yield b"["
    first = True
    for instance in instances:
        try:
            item = instance_metadata(scope, study, instance)
        except Exception:
            # An unreadable file (or one that cannot be cleaned) is left out.
            logger.warning("dicomweb: no metadata for instance %s", instance.pk)
            continue
        yield (b"" if first else b",") + json.dumps(item).encode()
        first = False
    yield b"]"


def metadata_response(request, scope, study, instances):
    if not accepts(request, DICOM_JSON) and not accepts(request, "application/json"):
        raise NotAcceptable(DICOM_JSON)
    return StreamingHttpResponse(
        metadata_chunks(scope, study, instances), content_type=DICOM_JSON
    )


def frame_numbers(text, instance):
    """Return the 1-based frame numbers of a path ("1,3,5"); 404 beyond the last."""
    try:
        numbers = [int(part) for part in text.split(",") if part]
    except ValueError:
        raise Http404("Bad frame list") from None
    if not numbers or not instance.has_pixels:
        raise Http404("No such frame")
    if any(n < 1 or n > instance.frame_count for n in numbers):
        raise Http404("No such frame")
    return numbers[:MAX_LIMIT]


def _accepts_any_syntax(request, syntax):
    header = request.headers.get("Accept", "").replace('"', "").replace(" ", "")
    return "transfer-syntax=*" in header or f"transfer-syntax={syntax}" in header


def _native_frame(ds, number):
    rows, columns = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.BitsAllocated)
    length = rows * columns * samples * bits // 8
    if bits % 8 or length <= 0:
        return None
    data = ds.PixelData
    start = (number - 1) * length
    if start + length > len(data):
        return None
    return bytes(data[start : start + length])


def frame_parts(request, instance):
    """Return a function of frame numbers yielding (content type, chunks) per frame.

    Uncompressed little-endian pixel data goes as it is stored (explicit VR
    little endian); a compressed frame goes as its stored fragment with its
    transfer syntax when the client accepts ``transfer-syntax=*`` (or that
    syntax), and decoded to native little-endian pixels otherwise.
    """
    with instance.file.open("rb") as fh:
        ds = rendering.dataset_read(fh.read())
    syntax = ds.file_meta.TransferSyntaxUID
    if "PixelData" not in ds:
        raise Http404("No pixel data")
    frames = instance.frame_count
    decoded = None

    def part(number):
        nonlocal decoded
        if syntax in NATIVE_SYNTAXES:
            data = _native_frame(ds, number)
            if data is not None:
                return f"{OCTET_STREAM}; transfer-syntax={ExplicitVRLittleEndian}", data
        elif syntax.is_compressed and _accepts_any_syntax(request, syntax):
            data = pydicom.encaps.get_frame(
                ds.PixelData, number - 1, number_of_frames=frames
            )
            return f"{OCTET_STREAM}; transfer-syntax={syntax}", data
        if decoded is None:
            decoded = ds.pixel_array
        array = decoded if frames == 1 else decoded[number - 1]
        data = array.astype(array.dtype.newbyteorder("<")).tobytes()
        return f"{OCTET_STREAM}; transfer-syntax={ExplicitVRLittleEndian}", data

    return part


def frames_response(request, instance, numbers):
    """Return frames as multipart/related; type="application/octet-stream"."""
    if not accepts(request, OCTET_STREAM):
        raise NotAcceptable(OCTET_STREAM)
    part = frame_parts(request, instance)
    parts = []
    for number in numbers:
        content_type, data = part(number)
        parts.append((content_type, [data]))
    return multipart_response(parts, media_type=OCTET_STREAM, streaming=False)


def rendered_response(request, instance, number=1):
    """Return a frame rendered as PNG, or JPEG when that is what is accepted.

    Uses studies.rendering (its window from the file, its cache, its placeholder).
    """
    if not instance.has_pixels or not 1 <= number <= instance.frame_count:
        raise Http404("No such frame")
    if not accepts(request, "image/png") and not accepts(request, "image/jpeg"):
        raise NotAcceptable("image/png")
    rendered = rendering.frame_render(instance=instance, frame=number - 1, fmt="png")
    content, content_type = rendered.content, "image/png"
    if not accepts(request, "image/png"):
        image = Image.open(io.BytesIO(content)).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        content, content_type = buffer.getvalue(), "image/jpeg"
    response = HttpResponse(content, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["Vary"] = "Cookie"
    return response


def study_list(studies):
    """Return studies (an iterable or queryset) newest first, with their patients."""
    if hasattr(studies, "select_related"):
        studies = studies.select_related("patient").order_by(
            "-study_date", "-study_time", "-id"
        )
    return list(studies)
