"""De-identification along the PS3.15 Basic Application Level Confidentiality
Profile."""

from types import SimpleNamespace

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from studies.deidentify import Deidentifier, deidentification_salt
from tests.factories import shipped_file

PSEUDONYM = SimpleNamespace(
    given_name="4821", family_name="Anonymous", pseudo_patient_id="ANON-4821"
)


def _identified_ct():
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    ds.PatientName = "Peeters^Jan"
    ds.PatientID = "PID-778899"
    ds.PatientBirthDate = "19700517"
    ds.AccessionNumber = "ACC-4455"
    ds.InstitutionName = "AZ Sint-Jan"
    ds.ReferringPhysicianName = "Janssens^Marie"
    ds.PerformingPhysicianName = "Claes^Tom"
    ds.OtherPatientIDs = "OLD-1"
    ds.FrameOfReferenceUID = "1.2.3.4.5.6.7.8.1"
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8.2"
    ds.ReferencedImageSequence = Sequence([ref])
    ds.add_new(0x00090010, "LO", "ACME")
    ds.add_new(0x00091001, "LO", "Peeters private")
    return ds


def test_it_replaces_names_and_ids_and_removes_identifying_attributes():
    ds = _identified_ct()
    original = {e.keyword: str(e.value) for e in _identified_ct() if e.keyword}

    Deidentifier(salt="s", pseudonym=PSEUDONYM).apply(ds)

    assert str(ds.PatientName) == "Anonymous^4821"
    assert ds.PatientID == "ANON-4821"
    assert ds.PatientBirthDate == ""
    assert ds.AccessionNumber == ""
    assert ds.ReferringPhysicianName == ""
    for keyword in (
        "InstitutionName",
        "PerformingPhysicianName",
        "OtherPatientIDs",
        "StudyDescription",
        "SeriesDescription",
    ):
        # Removed, or a dummy where some IOD requires the attribute (type 1).
        assert keyword not in ds or str(ds[keyword].value) != original[keyword]


def test_it_marks_the_identity_removed_with_the_method_code():
    ds = _identified_ct()

    Deidentifier(salt="s", pseudonym=PSEUDONYM).apply(ds)

    assert ds.PatientIdentityRemoved == "YES"
    assert (
        "Basic Application Level Confidentiality Profile" in ds.DeidentificationMethod
    )
    code = ds.DeidentificationMethodCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")
    assert code.CodeMeaning == "Basic Application Confidentiality Profile"


def test_it_removes_private_tags_also_inside_sequences():
    ds = _identified_ct()
    item = Dataset()
    item.add_new(0x00110010, "LO", "ACME")
    item.add_new(0x00111001, "LO", "Peeters private")
    ds.ReferencedImageSequence.append(item)

    Deidentifier(salt="s", pseudonym=PSEUDONYM).apply(ds)

    found = []
    ds.walk(lambda _ds, elem: found.append(elem.tag) if elem.tag.is_private else None)
    assert found == []


def test_it_replaces_uids_consistently_and_keeps_standard_ones():
    first, second = _identified_ct(), _identified_ct()
    original = {
        "study": first.StudyInstanceUID,
        "series": first.SeriesInstanceUID,
        "for": first.FrameOfReferenceUID,
        "ref": first.ReferencedImageSequence[0].ReferencedSOPInstanceUID,
        "sop": first.SOPInstanceUID,
    }
    deidentifier = Deidentifier(salt="bucket-1", pseudonym=PSEUDONYM)

    deidentifier.apply(first)
    deidentifier.apply(second)

    assert first.StudyInstanceUID != original["study"]
    assert first.StudyInstanceUID == second.StudyInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    assert first.FrameOfReferenceUID not in (original["for"], "")
    assert first.ReferencedImageSequence[0].ReferencedSOPInstanceUID == (
        deidentifier.uid(original["ref"])
    )
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID
    assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage


def test_another_salt_gives_other_uids():
    a, b = _identified_ct(), _identified_ct()

    Deidentifier(salt=deidentification_salt("bucket:1"), pseudonym=PSEUDONYM).apply(a)
    Deidentifier(salt=deidentification_salt("bucket:2"), pseudonym=PSEUDONYM).apply(b)

    assert a.StudyInstanceUID != b.StudyInstanceUID


def test_it_replaces_person_names_nested_in_sequences():
    ds = _identified_ct()
    item = Dataset()
    item.PersonName = "Peeters^Jan"
    item.TextValue = "kept"
    ds.ReferencedImageSequence.append(item)

    Deidentifier(salt="s", pseudonym=PSEUDONYM).apply(ds)

    names = []
    ds.walk(
        lambda _ds, elem: names.append(str(elem.value)) if elem.VR == "PN" else None
    )
    assert "Anonymous^4821" in names
    assert not [name for name in names if "Peeters" in name]


# -- no date and no free text that may name the patient ------------------------------
# The files say LongitudinalTemporalInformationModified = REMOVED, so no date or
# time of the source may remain, wherever it sits (RT plans, structure sets, SR);
# a required one gets a dummy.


def _dated_and_narrated():
    ds = Dataset()
    ds.PatientName = "Peeters^Jan"
    ds.PatientID = "PID000001"
    ds.StudyDate = "20240102"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.RTPlanDate = "20240103"
    ds.RTPlanTime = "101500"
    ds.StructureSetDate = "20240104"
    ds.DateOfSecondaryCapture = "20240105"
    ds.ReasonForStudy = "Follow-up of Jan Peeters after the fall"
    ds.ReasonForTheRequestedProcedure = "Jan Peeters, suspected fracture"
    item = Dataset()
    item.ObservationDateTime = "20240106101500"
    item.TextValue = "Patient Jan Peeters reports pain"
    ds.ContentSequence = Sequence([item])
    annotation = Dataset()
    annotation.UnformattedTextValue = "J. Peeters"
    ds.TextObjectSequence = Sequence([annotation])
    return ds


def _values(ds):
    return {elem.keyword: elem.value for elem in ds.iterall()}


def test_it_leaves_no_date_or_time_of_the_source():
    ds = Deidentifier(salt="s", pseudonym=PSEUDONYM).apply(_dated_and_narrated())

    source = {
        elem.value
        for elem in _dated_and_narrated().iterall()
        if elem.VR in ("DA", "DT", "TM")
    }
    dated = {
        elem.keyword: elem.value
        for elem in ds.iterall()
        if elem.VR in ("DA", "DT", "TM") and elem.value in source
    }
    # Required dates get a dummy (1900-01-01) so the object stays valid.
    assert dated == {}
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"


def test_it_removes_free_text_that_names_the_patient():
    ds = Deidentifier(salt="s", pseudonym=PSEUDONYM).apply(_dated_and_narrated())

    texts = [str(v) for v in _values(ds).values() if isinstance(v, str)]
    assert not [text for text in texts if "Peeters" in text]
