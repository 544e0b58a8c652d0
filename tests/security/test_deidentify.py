"""An anonymized download keeps no date and no free text that may name the patient.

The files say LongitudinalTemporalInformationModified = REMOVED, so no date or
time of the source may remain, wherever it sits (RT plans, structure sets, SR);
a required one gets a dummy.
"""

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from studies.deidentify import Deidentifier


class _Pseudonym:
    given_name = "482913"
    family_name = "Anonymous"
    pseudo_patient_id = "ANON-7-XYZ"


def _dataset():
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
    ds = Deidentifier(salt="s", pseudonym=_Pseudonym()).apply(_dataset())

    source = {
        elem.value for elem in _dataset().iterall() if elem.VR in ("DA", "DT", "TM")
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
    ds = Deidentifier(salt="s", pseudonym=_Pseudonym()).apply(_dataset())

    texts = [str(v) for v in _values(ds).values() if isinstance(v, str)]
    assert not [text for text in texts if "Peeters" in text]
