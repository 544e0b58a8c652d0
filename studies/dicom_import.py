"""Import DICOM files into a department: patients, studies, series and instances.

The headers are read with pydicom; the bulk values (pixel data) are not loaded
but their extent is checked, so a truncated file is reported, not stored. Every
file ends as one line of the summary: imported, already present (by SOP
Instance UID), or skipped with the reason. Nothing a file contains makes the
import crash.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import io
import itertools
import os
import re
import struct
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.db import DatabaseError, IntegrityError, models, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.encaps import generate_fragments
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset, read_file_meta_info
from pydicom.multival import MultiValue
from pydicom.valuerep import AMBIGUOUS_VR, PersonName

from recipients.models import Department

from .frame_reader import PIXEL_DATA_TAGS
from .models import Instance, Patient, Series, Study

# Headers are read in one pass; values larger than this stay on disk (deferred).
DEFER_SIZE = 16 * 1024
# Files up to this size are read whole, then parsed from memory.
READ_WHOLE_SIZE = 1024 * 1024
# Files whose headers are read and whose existing rows are fetched together.
CHUNK_SIZE = 200
UNDEFINED_LENGTH = 0xFFFFFFFF
# The top-level elements a file's header is read for (_header_from and what
# it calls); pydicom adds Specific Character Set.
HEADER_KEYWORDS = (
    "AccessionNumber",
    "BitsAllocated",
    "BurnedInAnnotation",
    "Columns",
    "InstanceNumber",
    "InstitutionName",
    "Modality",
    "NumberOfFrames",
    "PatientBirthDate",
    "PatientID",
    "PatientName",
    "PatientSex",
    "PhotometricInterpretation",
    "ReferringPhysicianName",
    "Rows",
    "SOPClassUID",
    "SOPInstanceUID",
    "SamplesPerPixel",
    "SeriesDescription",
    "SeriesInstanceUID",
    "SeriesNumber",
    "StudyDate",
    "StudyDescription",
    "StudyInstanceUID",
    "StudyTime",
)
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
DEFLATED = "1.2.840.10008.1.2.1.99"
NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
# PS3.5 9.1: digits and dots, at most 64 characters (components not empty).
UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")
UID_MAX_LENGTH = 64
INFLATE_CHUNK = 1024 * 1024
HEADER_TAGS = [tag_for_keyword(k) for k in HEADER_KEYWORDS] + list(PIXEL_DATA_TAGS)


class Outcome(models.TextChoices):
    IMPORTED = "imported"
    PRESENT = "already present"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file."""

    path: Path
    outcome: Outcome
    reason: str = ""
    study_id: int | None = None
    # The file could not be stored for a passing cause (disk, database): a
    # sender may try again; any other skip is the file's own fault.
    retryable: bool = False


@dataclass
class ImportSummary:
    """Every file's outcome, in the order the files were met."""

    outcomes: list[FileOutcome] = field(default_factory=list)

    def _with(self, outcome):
        return [o for o in self.outcomes if o.outcome is outcome]

    @property
    def imported(self) -> list[FileOutcome]:
        return self._with(Outcome.IMPORTED)

    @property
    def already_present(self) -> list[FileOutcome]:
        return self._with(Outcome.PRESENT)

    @property
    def skipped(self) -> list[FileOutcome]:
        return self._with(Outcome.SKIPPED)

    @property
    def study_ids(self) -> set[int]:
        """Return the studies that the imported or present files belong to."""
        return {o.study_id for o in self.outcomes if o.study_id is not None}


Progress = Callable[[int, int, FileOutcome], None]


class _Skip(Exception):
    """A file that cannot be imported; the message is the reason."""


@dataclass(frozen=True)
class _Header:
    """The values of one file that the import stores."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str
    family_name: str
    given_name: str
    birth_date: datetime.date | None
    sex: str
    study_date: datetime.date | None
    study_time: datetime.time | None
    study_description: str
    accession_number: str
    referring_physician: str
    institution_name: str
    modality: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    number_of_frames: int
    rows: int | None
    columns: int | None
    has_pixels: bool
    burned_in_annotation: str


def import_dicom_paths(
    *,
    paths: Iterable[str | Path],
    department: Department,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import DICOM files and folders (recursively) into the department's studies."""
    summary = ImportSummary()
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(p for p in sorted(path.rglob("*")) if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            summary.outcomes.append(
                FileOutcome(path, Outcome.SKIPPED, "no such file or folder")
            )
    importer = DepartmentImport(department)
    total = len(files)
    done = 0
    for chunk in _chunks(files, CHUNK_SIZE):
        headers = [(path, _read_or_reason(path)) for path in chunk]
        importer.prefetch([h for _, h in headers if isinstance(h, _Header)])
        for path, header in headers:
            if isinstance(header, _Header):
                outcome = importer.import_file(path, header)
            else:
                outcome = FileOutcome(path, Outcome.SKIPPED, header)
            summary.outcomes.append(outcome)
            done += 1
            if progress is not None:
                progress(done, total, outcome)
    return summary


def _chunks(items: list, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class DepartmentImport:
    """Create the rows of one department's import, caching what it has seen.

    `import_dicom_paths()` feeds it files a chunk at a time; the DICOM receiver
    keeps one per association and feeds it each received file (`import_one`).

    With `receiving=True` (the receiver) a received file is moved into the
    storage rather than copied (it is a temporary file of its own), and the
    studies' `instance_count` is not bumped per file: the studies touched are
    recounted from their rows by `flush_counts()`, which the receiver calls
    every so many files and when the association ends.
    """

    def __init__(self, department: Department, *, receiving: bool = False):
        self.department = department
        self.receiving = receiving
        self.patients: dict[str, Patient] = {}
        self.studies: dict[str, Study] = {}
        self.series: dict[str, Series] = {}
        self.instance_uids: set[str] = set()
        self.uncounted: set[int] = set()

    def flush_counts(self) -> None:
        """Recount `instance_count` from the rows of the studies touched since.

        The studies' rows are locked first, so that the count (a statement of
        its own, seeing what is committed by then) cannot miss an instance of
        a concurrent import whose own +1 came before; one that comes after
        adds to this count. A recount also repairs a count left short by a
        receiver that died before its flush.
        """
        if not self.uncounted:
            return
        pks = sorted(self.uncounted)
        counts = (
            Instance.objects.filter(series__study=OuterRef("pk"))
            .order_by()
            .values("series__study")
            .annotate(n=Count("pk"))
            .values("n")
        )
        with transaction.atomic():
            list(Study.objects.filter(pk__in=pks).select_for_update().values("pk"))
            Study.objects.filter(pk__in=pks).update(
                instance_count=Coalesce(Subquery(counts), 0)
            )
        self.uncounted.difference_update(pks)

    def prefetch(self, headers: list[_Header], *, instances: bool = True) -> None:
        """Fetch the rows these files may already have, a few queries per chunk.

        Without `instances`, an instance already stored is found by the
        unique SOP Instance UID when it is saved (one query less per new file).
        """
        patient_ids = {h.patient_id for h in headers} - self.patients.keys()
        study_uids = {h.study_instance_uid for h in headers} - self.studies.keys()
        series_uids = {h.series_instance_uid for h in headers} - self.series.keys()
        sop_uids = set()
        if instances:
            sop_uids = {h.sop_instance_uid for h in headers} - self.instance_uids
        if patient_ids:
            for patient in Patient.objects.filter(
                department=self.department, patient_id__in=patient_ids
            ):
                self.patients[patient.patient_id] = patient
        if study_uids:
            for study in Study.objects.filter(
                study_instance_uid__in=study_uids
            ).select_related("department", "patient"):
                self.studies[study.study_instance_uid] = study
        if series_uids:
            for series in Series.objects.filter(series_instance_uid__in=series_uids):
                self.series[series.series_instance_uid] = series
        if sop_uids:
            self.instance_uids.update(
                Instance.objects.filter(sop_instance_uid__in=sop_uids).values_list(
                    "sop_instance_uid", flat=True
                )
            )

    def import_one(
        self, path: Path, *, announced_uid: str | None = None
    ) -> FileOutcome:
        """Import one file with the same checks as `import_dicom_paths()`.

        `announced_uid` is the SOP Instance UID a sender said the file holds
        (a C-STORE request's); a file that holds another is refused.
        """
        header = _read_or_reason(path)
        if not isinstance(header, _Header):
            return FileOutcome(path, Outcome.SKIPPED, header)
        if announced_uid is not None and header.sop_instance_uid != announced_uid:
            return FileOutcome(
                path,
                Outcome.SKIPPED,
                "SOP Instance UID differs from the one announced",
            )
        # One file at a time, the instance's own query would cost as much as
        # its insert: a repeat is found by its unique UID instead.
        self.prefetch([header], instances=False)
        return self.import_file(path, header)

    def import_file(self, path: Path, header: _Header) -> FileOutcome:
        study = self.studies.get(header.study_instance_uid)
        try:
            if study is not None:
                self._check_department(study)
            if header.sop_instance_uid in self.instance_uids:
                return FileOutcome(
                    path, Outcome.PRESENT, study_id=study.pk if study else None
                )
            return self._create(path, header)
        except _Skip as exc:
            return FileOutcome(path, Outcome.SKIPPED, str(exc))

    def _create(self, path: Path, header: _Header) -> FileOutcome:
        stored_name = ""
        instance = None
        # The rows above the instance already exist: its insert alone needs
        # no transaction (nor its BEGIN and COMMIT round trips).
        known = (
            self.receiving
            and header.patient_id in self.patients
            and header.study_instance_uid in self.studies
            and header.series_instance_uid in self.series
        )
        try:
            with contextlib.nullcontext() if known else transaction.atomic():
                patient = self._patient(header)
                study = self._study(header, patient)
                series = self._series(header, study)
                instance = Instance(
                    series=series,
                    sop_instance_uid=header.sop_instance_uid,
                    sop_class_uid=header.sop_class_uid,
                    instance_number=header.instance_number,
                    number_of_frames=header.number_of_frames,
                    rows=header.rows,
                    columns=header.columns,
                    has_pixels=header.has_pixels,
                    burned_in_annotation=header.burned_in_annotation,
                )
                if not (self.receiving and _move_received(instance, path)):
                    with path.open("rb") as handle:
                        content = _Received(handle) if self.receiving else File(handle)
                        instance.file.save(path.name, content, save=False)
                stored_name = instance.file.name
                instance.save()
                if not self.receiving:
                    Study.objects.filter(pk=study.pk).update(
                        instance_count=models.F("instance_count") + 1
                    )
        except (_Skip, DatabaseError, OSError) as exc:
            # Rows made in the rolled-back transaction must not stay cached.
            self._forget(header)
            if stored_name and instance is not None:
                instance.file.storage.delete(stored_name)
            if isinstance(exc, _Skip):
                return FileOutcome(path, Outcome.SKIPPED, str(exc))
            if (
                isinstance(exc, IntegrityError)
                and Instance.objects.filter(
                    sop_instance_uid=header.sop_instance_uid
                ).exists()
            ):
                # Imported meanwhile by a concurrent import.
                self.instance_uids.add(header.sop_instance_uid)
                return FileOutcome(path, Outcome.PRESENT)
            if isinstance(exc, OSError):
                return FileOutcome(
                    path,
                    Outcome.SKIPPED,
                    f"could not store the file: {exc}",
                    retryable=True,
                )
            if not isinstance(exc, IntegrityError):
                return FileOutcome(
                    path,
                    Outcome.SKIPPED,
                    f"database error: {_short(exc)}",
                    retryable=True,
                )
            return FileOutcome(path, Outcome.SKIPPED, f"conflict while saving: {exc}")
        self.instance_uids.add(header.sop_instance_uid)
        if self.receiving:
            self.uncounted.add(study.pk)
        return FileOutcome(path, Outcome.IMPORTED, study_id=study.pk)

    def _forget(self, header: _Header) -> None:
        self.patients.pop(header.patient_id, None)
        self.studies.pop(header.study_instance_uid, None)
        self.series.pop(header.series_instance_uid, None)

    def _check_department(self, study: Study) -> None:
        if study.department_id != self.department.pk:
            # Not which one: the reason reaches the sending modality (the
            # C-STORE's Error Comment) and this department's Incoming list.
            raise _Skip(
                f"study {study.study_instance_uid} belongs to another department"
            )

    def _patient(self, header: _Header) -> Patient:
        patient = self.patients.get(header.patient_id)
        if patient is None:
            patient, _ = Patient.objects.get_or_create(
                department=self.department,
                patient_id=header.patient_id,
                defaults={
                    "family_name": header.family_name,
                    "given_name": header.given_name,
                    "birth_date": header.birth_date,
                    "sex": header.sex,
                },
            )
            self.patients[header.patient_id] = patient
        return patient

    def _study(self, header: _Header, patient: Patient) -> Study:
        study = self.studies.get(header.study_instance_uid)
        if study is None:
            study, _ = Study.objects.select_related(
                "department", "patient"
            ).get_or_create(
                study_instance_uid=header.study_instance_uid,
                defaults={
                    "department": self.department,
                    "patient": patient,
                    "accession_number": header.accession_number,
                    "study_date": header.study_date,
                    "study_time": header.study_time,
                    "description": header.study_description,
                    "referring_physician": header.referring_physician,
                    "institution_name": header.institution_name,
                },
            )
            self.studies[header.study_instance_uid] = study
        self._check_department(study)
        if study.patient.patient_id != header.patient_id:
            # Merging would put another patient's images under this one's name.
            raise _Skip(
                f"study {study.study_instance_uid} holds another patient "
                "(Patient ID differs)"
            )
        return study

    def _series(self, header: _Header, study: Study) -> Series:
        series = self.series.get(header.series_instance_uid)
        if series is None:
            series, created = Series.objects.get_or_create(
                series_instance_uid=header.series_instance_uid,
                defaults={
                    "study": study,
                    "modality": header.modality,
                    "series_number": header.series_number,
                    "description": header.series_description,
                },
            )
            if created:
                Study.objects.filter(pk=study.pk).update(
                    series_count=models.F("series_count") + 1
                )
            self.series[header.series_instance_uid] = series
        if series.study_id != study.pk:
            raise _Skip(
                f"series {series.series_instance_uid} already belongs to another study"
            )
        self._add_modality(study, series.modality)
        return series

    def _add_modality(self, study: Study, modality: str) -> None:
        """Keep Study.modalities the sorted set of its series' modalities."""
        current = {m for m in study.modalities.split(",") if m}
        if not modality or modality in current:
            return
        modalities = ",".join(sorted(current | {modality}))
        max_length = Study._meta.get_field("modalities").max_length
        study.modalities = modalities[:max_length]
        study.save(update_fields=["modalities"])


def _move_received(instance: Instance, path: Path) -> bool:
    """Move a received file to its name in the storage; False to leave it to
    FieldFile.save() (another storage, another file system, a name taken).

    What FileSystemStorage does for a temporary file, without its general
    path handling: a hard link that cannot replace an existing file, then
    the temporary name's unlink, then the storage's permissions.
    """
    storage = instance.file.storage
    if storage.__class__ is not FileSystemStorage:  # (default_storage is a proxy)
        return False
    name = instance.file.field.generate_filename(instance, path.name)
    target = storage.path(name)
    try:
        try:
            os.link(path, target)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.link(path, target)
    except OSError:
        return False
    with contextlib.suppress(OSError):
        os.unlink(path)
    if storage.file_permissions_mode is not None:
        os.chmod(target, storage.file_permissions_mode)
    instance.file.name = name
    return True


class _Received(File):
    """A received temporary file: FileSystemStorage moves it, not copies it."""

    def temporary_file_path(self) -> str:
        return self.file.name


def _read_or_reason(path: Path) -> _Header | str:
    """Return the file's header, or the reason it cannot be imported."""
    try:
        return read_header(path)
    except _Skip as exc:
        return str(exc)


def read_header(path: Path) -> _Header:
    """Read and check one file's DICOM header; raise _Skip with the reason."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            size = path.stat().st_size
            # From memory: pydicom asks a file for its position at every
            # element (a system call each), a buffer does not.
            data = path.read_bytes() if size <= READ_WHOLE_SIZE else None
            syntax = _plain_transfer_syntax(data) if data is not None else None
            if syntax is None or syntax == DEFLATED:
                meta = read_file_meta_info(path)
                if str(meta.get("TransferSyntaxUID", "")) == DEFLATED:
                    return _read_deflated(path, meta, caught)
            with contextlib.ExitStack() as stack:
                if data is not None:
                    source, defer = io.BytesIO(data), None
                else:
                    source, defer = stack.enter_context(path.open("rb")), DEFER_SIZE
                # Only the elements the import reads are kept; the others are
                # stepped over (their lengths still walked, so that one that
                # runs past the end of the file leaves the read past it).
                dataset = dcmread(
                    source, defer_size=defer, force=False, specific_tags=HEADER_TAGS
                )
                if source.tell() > size:
                    raise _Skip("truncated DICOM file (an element is cut off)")
    except _Skip:
        raise
    except InvalidDicomError:
        raise _Skip("not a DICOM file") from None
    except OSError as exc:
        raise _Skip(f"unreadable: {exc.strerror or exc}") from None
    except Exception as exc:  # pydicom raises many kinds on malformed input
        raise _Skip(f"unreadable DICOM: {_short(exc)}") from None
    return _checked_header(dataset, size, caught)


_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
}


def _plain_transfer_syntax(data: bytes) -> str | None:
    """Return the Transfer Syntax UID of a Part 10 file's meta group, walked
    in its bytes; None unless the group is plainly there (the preamble, DICM,
    group 0002 elements in explicit VR), where pydicom's reader decides.

    A deflated data set must be known before pydicom reads it (it would be
    inflated whole in memory); this tells it without parsing the group twice.
    """
    if data[128:132] != b"DICM":
        return None
    position, end = 132, min(len(data), 132 + 64 * 1024)
    while position + 8 <= end:
        group, element = struct.unpack_from("<HH", data, position)
        vr = data[position + 4 : position + 6]
        if group != 0x0002 or not (vr.isalpha() and vr.isupper()):
            return None
        if vr in _LONG_VRS:
            if position + 12 > end:
                return None
            (length,) = struct.unpack_from("<I", data, position + 8)
            value = position + 12
        else:
            (length,) = struct.unpack_from("<H", data, position + 6)
            value = position + 8
        if element == 0x0010:
            if vr != b"UI" or value + length > end:
                return None
            return (
                data[value : value + length].rstrip(b"\x00 ").decode("ascii", "replace")
            )
        position = value + length
    return None


def _read_deflated(path: Path, meta, caught) -> _Header:
    """Read a deflated file's header, inflating into a bounded temporary file.

    pydicom inflates a deflated data set whole, in memory: a few hundred
    kilobytes can claim gigabytes. Here it is inflated in chunks to disk, and
    refused once it grows past DICOM_MAX_INFLATED_BYTES.
    """
    limit = settings.DICOM_MAX_INFLATED_BYTES
    with path.open("rb") as source, tempfile.TemporaryFile() as inflated:
        source.seek(_meta_end(source))
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        while True:
            chunk = source.read(INFLATE_CHUNK) if not inflater.unconsumed_tail else b""
            data = inflater.decompress(inflater.unconsumed_tail + chunk, INFLATE_CHUNK)
            total += len(data)
            if total > limit:
                raise _Skip(
                    f"deflated data set inflates beyond {limit // (1024 * 1024)} MB"
                )
            inflated.write(data)
            if inflater.eof or (not chunk and not inflater.unconsumed_tail):
                break
        size = inflated.tell()
        inflated.seek(0)
        dataset = read_dataset(
            inflated, is_implicit_VR=False, is_little_endian=True, defer_size=DEFER_SIZE
        )
        dataset.file_meta = meta
        return _checked_header(dataset, size, caught)


def _meta_end(fp) -> int:
    """Return where a Part 10 file's meta group ends (its group length says)."""
    fp.seek(128)
    head = fp.read(16)
    if len(head) < 16 or head[:4] != b"DICM" or head[4:10] != b"\x02\x00\x00\x00UL":
        raise _Skip("deflated file without a file meta group length")
    return 144 + struct.unpack("<I", head[12:16])[0]


def _checked_header(dataset, size: int, caught) -> _Header:
    if any("End of file reached" in str(w.message) for w in caught):
        raise _Skip("truncated DICOM file (ends inside a data element)")
    # Checked before any attribute access converts the raw elements (and
    # without reading the deferred ones).
    elements = {
        tag: dataset.get_item(tag, keep_deferred=True) for tag in list(dataset.keys())
    }
    for element in elements.values():
        if (
            isinstance(element, RawDataElement)
            and element.length != UNDEFINED_LENGTH
            and element.value_tell + element.length > size
        ):
            raise _Skip(f"truncated DICOM file (element {element.tag} is cut off)")
    try:
        return _header_from(_Values(dataset, elements))
    except _Skip:
        raise
    except Exception as exc:  # a malformed value (bad VR, wrong encoding)
        raise _Skip(f"unreadable DICOM header: {_short(exc)}") from None


class _Values:
    """A data set's top-level values, converted only when asked, once each.

    `get(keyword)` gives what `dataset.get(keyword)` gives, for a fraction of
    its cost: a raw element is converted with the data set's character set
    (as pydicom's own access does) and kept here, not written back. A value
    pydicom would read later (deferred) or whose VR depends on other
    elements is asked of the data set itself.
    """

    def __init__(self, dataset, elements: dict):
        self.dataset = dataset
        self.file_meta = getattr(dataset, "file_meta", None)
        self._elements = elements
        self._values: dict[int, object] = {}
        self._encoding = None

    def __contains__(self, tag: int | str) -> bool:
        return (_tag_of(tag) if isinstance(tag, str) else tag) in self._elements

    def get_item(self, tag):
        return self._elements.get(tag)

    def get(self, keyword: str):
        tag = _tag_of(keyword)
        try:
            return self._values[tag]
        except KeyError:
            pass
        element = self._elements.get(tag)
        if element is None:
            value = None
        elif not isinstance(element, RawDataElement):
            value = element.value
        elif (element.value is None and element.length) or element.VR in AMBIGUOUS_VR:
            value = self.dataset.get(keyword)
        else:
            value = _plain_value(element, _vr_of(keyword))
            if value is _CONVERT:
                value = self._converted(element)
        self._values[tag] = value
        return value

    def _converted(self, element):
        if self._encoding is None:
            dataset = self.dataset
            self._encoding = dataset.original_character_set or dataset._character_set
        return convert_raw_data_element(
            element, encoding=self._encoding, ds=self.dataset
        ).value


@functools.cache
def _tag_of(keyword: str) -> int:
    return tag_for_keyword(keyword)


@functools.cache
def _vr_of(keyword: str) -> str:
    return dictionary_VR(keyword)


_CONVERT = object()
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "PN", "SH", "TM", "UI"}
_INTEGER_RE = re.compile(r" *[+-]?[0-9]+ *")


def _plain_value(element: RawDataElement, vr: str):
    """Return a plain value as pydicom would convert it, or _CONVERT.

    Only the common case is read here: one value, in the VR the dictionary
    gives, of ASCII bytes without escape sequences (which every DICOM
    character set decodes alike). Anything else is left to pydicom.
    """
    if element.VR not in (None, vr):
        return _CONVERT
    raw = element.value
    if raw is None:
        return _CONVERT
    if vr == "US":
        if element.length != 2 or len(raw) != 2:
            return _CONVERT
        return int.from_bytes(raw, "little" if element.is_little_endian else "big")
    if vr not in _TEXT_VRS and vr != "IS":
        return _CONVERT
    if not raw.isascii() or b"\\" in raw or b"\x1b" in raw:
        return _CONVERT
    text = raw.decode("ascii").rstrip(" \x00")
    if vr == "IS" and text and not _INTEGER_RE.fullmatch(text):
        return _CONVERT
    return PersonName(text) if vr == "PN" and text else text


def _header_from(dataset: _Values) -> _Header:
    meta = dataset.file_meta
    meta_class = str(getattr(meta, "MediaStorageSOPClassUID", "") or "")
    if meta_class == DICOMDIR_SOP_CLASS:
        raise _Skip("a DICOMDIR index, not an image")
    sop_instance_uid = _text(dataset, "SOPInstanceUID") or str(
        getattr(meta, "MediaStorageSOPInstanceUID", "") or ""
    )
    uids = {
        "SOPInstanceUID": sop_instance_uid,
        "StudyInstanceUID": _text(dataset, "StudyInstanceUID"),
        "SeriesInstanceUID": _text(dataset, "SeriesInstanceUID"),
    }
    for keyword, uid in uids.items():
        if not uid:
            raise _Skip(f"missing {keyword}")
        if len(uid) > UID_MAX_LENGTH:
            raise _Skip(f"invalid {keyword} (longer than 64 characters)")
        if not UID_RE.fullmatch(uid):
            raise _Skip(f"invalid {keyword} (a UID holds only digits and dots)")
    has_pixels = any(tag in dataset for tag in PIXEL_DATA_TAGS)
    if not has_pixels and "Rows" in dataset and "Columns" in dataset:
        raise _Skip("truncated DICOM file (an image without pixel data)")
    number_of_frames = max(_int(dataset, "NumberOfFrames") or 1, 1)
    if has_pixels:
        _check_pixel_extent(dataset, number_of_frames)
    family_name, given_name = parse_person_name(dataset.get("PatientName"))
    patient_id = _text(dataset, "PatientID", 64) or _unknown_patient_id(uids)
    return _Header(
        sop_instance_uid=sop_instance_uid,
        sop_class_uid=_text(dataset, "SOPClassUID", 64) or meta_class[:64],
        study_instance_uid=uids["StudyInstanceUID"],
        series_instance_uid=uids["SeriesInstanceUID"],
        patient_id=patient_id,
        family_name=family_name[:100],
        given_name=given_name[:100],
        birth_date=parse_dicom_date(dataset.get("PatientBirthDate")),
        sex=_sex(_text(dataset, "PatientSex")),
        study_date=parse_dicom_date(dataset.get("StudyDate")),
        study_time=parse_dicom_time(dataset.get("StudyTime")),
        study_description=_text(dataset, "StudyDescription", 200),
        accession_number=_text(dataset, "AccessionNumber", 16),
        referring_physician=format_person_name(dataset.get("ReferringPhysicianName"))[
            :200
        ],
        institution_name=_text(dataset, "InstitutionName", 200),
        modality=_text(dataset, "Modality", 16),
        series_number=_int(dataset, "SeriesNumber"),
        series_description=_text(dataset, "SeriesDescription", 200),
        instance_number=_int(dataset, "InstanceNumber"),
        number_of_frames=number_of_frames,
        rows=_positive(_int(dataset, "Rows")),
        columns=_positive(_int(dataset, "Columns")),
        has_pixels=has_pixels,
        burned_in_annotation=_burned_in(dataset),
    )


def _check_pixel_extent(dataset, frames: int) -> None:
    """Refuse pixel data beyond the limits, or that cannot hold its frames.

    Only element headers are read (the pixel data stays deferred, or is
    walked fragment by fragment), so a claim of billions of frames costs
    nothing; the viewer never lists more frames than the file holds.
    """
    rows, columns = _int(dataset, "Rows") or 0, _int(dataset, "Columns") or 0
    samples = _int(dataset, "SamplesPerPixel") or 1
    bits = _int(dataset, "BitsAllocated") or 8
    if frames > settings.DICOM_MAX_FRAMES:
        raise _Skip(f"NumberOfFrames {frames} is beyond {settings.DICOM_MAX_FRAMES}")
    if rows * columns * samples > settings.DICOM_MAX_FRAME_PIXELS:
        raise _Skip(f"a frame of {rows}x{columns} pixels is too large to display")
    # YBR_FULL_422 stores two values per pixel, not three (PS3.3 C.7.6.3.1.2).
    stored = (
        2 if _text(dataset, "PhotometricInterpretation") == "YBR_FULL_422" else samples
    )
    needed = (rows * columns * min(samples, stored) * bits * frames + 7) // 8
    if needed > settings.DICOM_MAX_PIXEL_BYTES:
        raise _Skip(f"{frames} frames of {rows}x{columns} pixels are too large")
    tag = next(tag for tag in PIXEL_DATA_TAGS if tag in dataset)
    element = dataset.get_item(tag)
    length = getattr(element, "length", None)
    if length is None or not rows or not columns:
        return
    if length != UNDEFINED_LENGTH:
        if length < needed:
            raise _Skip(
                f"NumberOfFrames {frames} does not fit the pixel data "
                f"({length} bytes for {needed})"
            )
        return
    value = element.value
    if not isinstance(value, bytes):
        return
    try:
        fragments = sum(1 for _ in generate_fragments(value)) - 1  # offset table
    except (ValueError, struct.error) as exc:
        raise _Skip(f"broken encapsulated pixel data: {_short(exc)}") from None
    if fragments < frames:
        raise _Skip(
            f"NumberOfFrames {frames} does not fit the pixel data "
            f"({fragments} fragments)"
        )


def _burned_in(dataset) -> str:
    flag = _text(dataset, "BurnedInAnnotation", 3).upper()
    return flag if flag in ("YES", "NO") else ""


def _unknown_patient_id(uids: dict[str, str]) -> str:
    # Patient ID may be empty in DICOM; never merge such studies into one patient.
    return f"UNKNOWN-{uids['StudyInstanceUID']}"[:64]


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def _text(dataset, keyword: str, max_length: int | None = None) -> str:
    value = dataset.get(keyword)
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip().replace("\x00", "")
    return text[:max_length] if max_length else text


def _int(dataset, keyword: str) -> int | None:
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _sex(value: str) -> str:
    value = value[:1].upper()
    return value if value in ("M", "F", "O") else ""


def _positive(value: int | None) -> int | None:
    return value if value is not None and value > 0 else None


def parse_person_name(value) -> tuple[str, str]:
    """Return (family name, given names) of a DICOM PN such as ``Last^First^Mid``."""
    if not value:
        return "", ""
    name = value if isinstance(value, PersonName) else PersonName(str(value))
    family = name.family_name.strip()
    given = " ".join(
        p.strip() for p in (name.given_name, name.middle_name) if p.strip()
    )
    return family, given


def format_person_name(value) -> str:
    """Return a DICOM PN as people write it: ``Dr. Anne Peeters``."""
    if not value:
        return ""
    name = value if isinstance(value, PersonName) else PersonName(str(value))
    parts = (
        name.name_prefix,
        name.given_name,
        name.middle_name,
        name.family_name,
        name.name_suffix,
    )
    return " ".join(p.strip() for p in parts if p.strip())


def parse_dicom_date(value) -> datetime.date | None:
    """Return the date of a DICOM DA (``YYYYMMDD``, or old ``YYYY.MM.DD``)."""
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    if len(digits) < 8:
        return None
    try:
        return datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def parse_dicom_time(value) -> datetime.time | None:
    """Return the time of a DICOM TM (``HHMMSS.FFFFFF``, ``HHMM``, ``HH:MM:SS``)."""
    text = str(value or "").strip().replace(":", "")
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6):
        return None
    hour, minute, second = int(whole[:2]), int(whole[2:4] or 0), int(whole[4:6] or 0)
    fraction = "".join(ch for ch in fraction if ch.isdigit())[:6]
    microsecond = int(fraction.ljust(6, "0")) if fraction else 0
    try:
        return datetime.time(hour, minute, min(second, 59), microsecond)
    except ValueError:
        return None
