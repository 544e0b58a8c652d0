"""An anonymized share's download against an independent PS3.15 Table E.1-1.

The reference is dicom-anonymizer's encoding of the table (a test dependency,
never used by the app): every attribute it lists is put in one file, at the top
level and two sequence levels deep, with a recognisable value; the file goes
through an anonymized bucket's download, and no original value may come back.
"""

import io
import zipfile

import pydicom
import pytest
from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c
from django.urls import reverse
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_ROOT_UID, generate_uid

from studies.deidentify import table_action
from tests.factories import SeriesFactory, instance_create, shipped_file, viewer_bucket
from tests.sharing.bucket_viewer_helpers import study_of

pytestmark = pytest.mark.django_db

# The reference's action lists, and what the project's table must say for each.
REFERENCE = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}
# A marker no shipped file holds: every value put in carries it (or 7777).
MARK = "QXJ"
NESTING = (0x52009229, 0x00089124)  # Shared Functional Groups, Derivation Image


def _reference():
    tags = {}
    for name, action in REFERENCE.items():
        for item in getattr(dicomfields_2026c, name):
            tags[item] = action
    return tags


def _single_reference_tags():
    return {
        (group << 16) | element: action
        for (group, element, *masks), action in _reference().items()
        if not masks
    }


def test_the_table_holds_every_attribute_of_the_reference_with_its_action():
    reference = _reference()
    assert len(reference) > 640  # the whole table, not a curated part

    gaps = {}
    for item, action in reference.items():
        if len(item) == 2:
            tag = (item[0] << 16) | item[1]
        else:  # a repeating group: any member, e.g. 50xx or 60xx
            group, element, group_mask, element_mask = item
            tag = ((group | 0x0002) << 16) | (element | (~element_mask & 0x000F))
        if table_action(tag) != action:
            gaps[f"{item}"] = (action, table_action(tag))
    assert gaps == {}


def _value(tag, vr, n):
    """Return a recognisable value of ``vr`` for the n-th attribute."""
    vr = vr.split(" or ")[0]
    if vr == "DA":
        return "19770707"
    if vr == "TM":
        return "070707"
    if vr == "DT":
        return "19770707070707"
    if vr == "AS":
        return "077Y"
    if vr == "UI":
        return f"1.2.826.0.1.3680043.7777.{n}"
    if vr in ("IS", "DS"):
        return "7777"
    if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
        return 7777
    if vr in ("FL", "FD"):
        return 7777.0
    if vr == "AT":
        return 0x77777777
    if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        return b"QXJ77777"
    if vr == "UR":
        return "http://qxj.example/7777"
    if vr == "PN":
        return f"{MARK}^Name{n}"
    return f"{MARK}{n:05d}"


def _add_every_attribute(ds, tags, *, depth):
    for n, tag in enumerate(sorted(tags)):
        vr = DicomDictionary[tag][0]
        if vr == "SQ":
            item = Dataset()
            item.PersonName = f"{MARK}^Item{n}"
            item.TextValue = f"{MARK}-item-{n}"
            item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.7777.9{n}"
            ds.add_new(tag, vr, Sequence([item]))
        else:
            ds.add_new(tag, vr, _value(tag, vr, n))
    if depth:
        inner = Dataset()
        _add_every_attribute(inner, tags, depth=depth - 1)
        ds.add_new(NESTING[len(NESTING) - depth], "SQ", Sequence([inner]))


def _originals(ds):
    values = set()
    for elem in ds.iterall():
        if elem.VR != "SQ" and elem.value not in (None, "", b""):
            values.add(str(elem.value))
    return values


def _file_with_every_attribute(study, series):
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    tags = {
        tag
        for tag in _single_reference_tags()
        if tag in DicomDictionary and tag >> 16 not in (0x0000, 0x0002, 0xFFFA, 0xFFFC)
    }
    # Keep what the file needs to stay an image of this study.
    tags -= {0x0020000D, 0x0020000E, 0x00080018}
    _add_every_attribute(ds, tags, depth=len(NESTING))
    ds.add_new(0x60000022, "LO", f"{MARK} overlay description")
    ds.add_new(0x60001500, "LO", f"{MARK} overlay label")
    ds.add_new(0x50000022, "LO", f"{MARK} curve description")
    ds.StudyInstanceUID = study.study_instance_uid
    ds.SeriesInstanceUID = series.series_instance_uid
    ds.SeriesNumber = series.series_number
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue(), len(tags)


def test_an_anonymized_download_gives_back_no_original_value_of_the_table(client):
    bucket = viewer_bucket(anonymize=True, message="")
    study = study_of(bucket)
    series = SeriesFactory(study=study, series_number=7, modality="CT")
    data, count = _file_with_every_attribute(study, series)
    instance = instance_create(series=series, data=data, number=1)
    original = pydicom.dcmread(io.BytesIO(data))
    originals = _originals(original) - _originals(
        pydicom.dcmread(shipped_file("CT_small.dcm"))
    )
    originals = {v for v in originals if MARK in v or "7777" in v}
    assert count > 600 and len(originals) > 500

    client.force_login(bucket.recipient_user)
    response = client.get(
        reverse(
            "sharing:received_download",
            kwargs={"bucket_id": bucket.pk, "study_id": study.pk},
        )
    )

    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    found = None
    for name in archive.namelist():
        ds = pydicom.dcmread(io.BytesIO(archive.read(name)))
        if ds.get("SeriesNumber") == 7:
            found = ds
    assert found is not None, "the file with every attribute was left out"
    left = sorted(v for v in _originals(found) if v in originals)
    # A UID the de-identification made (pydicom's root, hashed digits) may hold
    # "7777" by chance; what came in unchanged is in `left`.
    marked = sorted(
        v
        for v in _originals(found)
        if (MARK in v or "7777" in v) and not v.startswith(PYDICOM_ROOT_UID)
    )
    assert left == [] and marked == []
    assert instance.sop_instance_uid not in _originals(found)
    assert not [e for e in found.iterall() if e.tag.group in (0x5000, 0x6000)]
