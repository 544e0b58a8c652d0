"""Build Instance rows from pydicom's shipped test files (for the viewer tests)."""

import io
from pathlib import Path

import pydicom
import pydicom.data
from django.core.files.base import ContentFile
from pydicom.uid import generate_uid

from studies.models import Instance

TEST_FILES = Path(pydicom.data.DATA_ROOT, "test_files")
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def shipped_file(name):
    return TEST_FILES / name


def pixel_files():
    """Every shipped file (.dcm or no extension) that carries pixel data."""
    found = []
    for path in sorted(TEST_FILES.iterdir()):
        if not path.is_file() or path.suffix not in (".dcm", ""):
            continue
        try:
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=False)
        except Exception:  # noqa: S112 - unreadable files carry no usable pixels
            continue
        if any(k in ds for k in PIXEL_KEYWORDS):
            found.append(path)
    return found


def _int(ds, keyword, default=None):
    try:
        return int(ds.get(keyword, default) or default)
    except (TypeError, ValueError):
        return default


def instance_create(*, series, data, number=1):
    """Store DICOM bytes as an Instance of ``series`` (header values best effort)."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    sop_uid = str(ds.get("SOPInstanceUID", "") or "") or generate_uid()
    if Instance.objects.filter(sop_instance_uid=sop_uid).exists():
        sop_uid = generate_uid()
    instance = Instance(
        series=series,
        sop_instance_uid=sop_uid,
        sop_class_uid=str(ds.get("SOPClassUID", "") or ""),
        instance_number=number,
        number_of_frames=_int(ds, "NumberOfFrames", 1) or 1,
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        has_pixels=any(k in ds for k in PIXEL_KEYWORDS),
    )
    instance.file.save(f"{sop_uid}.dcm", ContentFile(data), save=False)
    instance.save()
    return instance


def study_file_bytes(name, *, study, series, **changes):
    """Return a shipped file rewritten to belong to ``study``/``series``.

    The patient module and accession come from the database, as an import
    would have left them; ``changes`` sets further attributes by keyword.
    """
    ds = pydicom.dcmread(shipped_file(name))
    patient = study.patient
    ds.PatientName = f"{patient.family_name}^{patient.given_name}"
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d")
    ds.AccessionNumber = study.accession_number
    ds.StudyInstanceUID = study.study_instance_uid
    ds.SeriesInstanceUID = series.series_instance_uid
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()
