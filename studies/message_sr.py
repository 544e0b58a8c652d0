"""Build the sender's message as a DICOM Basic Text SR in the shared study.

The message travels with a download as a real instance: same StudyInstanceUID,
its own "Message" series, the patient module copied from the study (or the
pseudonym when the bucket is anonymized).
"""

from __future__ import annotations

from django.utils import timezone
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import PersonName

from .deidentify import deidentification_mark

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
MESSAGE_SERIES_NUMBER = 9999
MESSAGE_SERIES_DESCRIPTION = "Message"


def _code(value, scheme, meaning):
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


# A PN component group holds at most 64 characters (PS3.5 6.2).
PN_MAX_LENGTH = 64


def _pn_component(value):
    """Return a name part fit for one PN component: no delimiter, no control."""
    text = "".join(
        " " if ch in "^=\\" or not ch.isprintable() else ch for ch in str(value or "")
    )
    return " ".join(text.split())


def sender_person_name(sender):
    """Return a user's DICOM PN, ``Family^Given^^Title``, from their name fields.

    Each field becomes one component; a delimiter or line break inside a field
    is a space, so no field can forge another component or component group.
    """
    family = _pn_component(sender.last_name)
    given = _pn_component(sender.first_name)
    prefix = _pn_component(sender.title)
    if not family and not given:
        family = _pn_component(sender.get_username())
    family = family[:PN_MAX_LENGTH]
    given = given[: max(PN_MAX_LENGTH - len(family) - 1, 0)]
    if len(family) + len(given) + len(prefix) + 4 > PN_MAX_LENGTH:
        prefix = ""
    return PersonName.from_named_components(
        family_name=family, given_name=given, name_prefix=prefix
    )


def message_sr_build(
    *,
    study,
    text,
    sender=None,
    sent_at=None,
    pseudonym=None,
    uid_seed=None,
):
    """Return a Basic Text SR data set holding ``text`` in ``study``.

    ``sender`` (a user) is named as the person observer.
    ``uid_seed`` (e.g. the share's id) makes the series and SOP instance UIDs
    stable, so two downloads of one share carry the same message instance.
    """
    sent_at = timezone.localtime(sent_at or timezone.now())
    seed = [study.study_instance_uid, "pacsshare-message", str(uid_seed)]
    if uid_seed is None:
        series_uid, sop_uid = generate_uid(), generate_uid()
    else:
        series_uid = generate_uid(entropy_srcs=[*seed, "series"])
        sop_uid = generate_uid(entropy_srcs=[*seed, "instance"])

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names and text in any language
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = sent_at.strftime("%Y%m%d")
    ds.InstanceCreationTime = sent_at.strftime("%H%M%S")

    patient = study.patient
    if pseudonym is not None:
        ds.PatientName = f"{pseudonym.family_name}^{pseudonym.given_name}"
        ds.PatientID = str(pseudonym.pseudo_patient_id)
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        deidentification_mark(ds)
    else:
        ds.PatientName = f"{patient.family_name}^{patient.given_name}"
        ds.PatientID = patient.patient_id
        ds.PatientBirthDate = (
            patient.birth_date.strftime("%Y%m%d") if patient.birth_date else ""
        )
        ds.PatientSex = patient.sex or ""

    # General Study: dates and accession only when the patient is known.
    ds.StudyInstanceUID = study.study_instance_uid
    identified = pseudonym is None
    ds.StudyDate = (
        study.study_date.strftime("%Y%m%d") if identified and study.study_date else ""
    )
    ds.StudyTime = (
        study.study_time.strftime("%H%M%S") if identified and study.study_time else ""
    )
    ds.AccessionNumber = study.accession_number if identified else ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    if identified and study.description:
        ds.StudyDescription = study.description

    # SR Document Series
    ds.Modality = "SR"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = MESSAGE_SERIES_NUMBER
    ds.SeriesDescription = MESSAGE_SERIES_DESCRIPTION
    ds.ReferencedPerformedProcedureStepSequence = Sequence()

    # General Equipment
    ds.Manufacturer = "PACSshare"

    # SR Document General
    ds.InstanceNumber = 1
    ds.ContentDate = sent_at.strftime("%Y%m%d")
    ds.ContentTime = sent_at.strftime("%H%M%S")
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.PerformedProcedureCodeSequence = Sequence()

    # SR Document Content: a container holding the message (and who wrote it).
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code("11488-4", "LN", "Consult note")])
    ds.ContinuityOfContent = "SEPARATE"
    items = []
    if sender is not None:
        observer = Dataset()
        observer.RelationshipType = "HAS OBS CONTEXT"
        observer.ValueType = "PNAME"
        observer.ConceptNameCodeSequence = Sequence(
            [_code("121008", "DCM", "Person Observer Name")]
        )
        observer.PersonName = sender_person_name(sender)
        items.append(observer)
    message = Dataset()
    message.RelationshipType = "CONTAINS"
    message.ValueType = "TEXT"
    message.ConceptNameCodeSequence = Sequence([_code("121106", "DCM", "Comment")])
    message.TextValue = str(text)
    items.append(message)
    ds.ContentSequence = Sequence(items)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def message_text(ds):
    """Return the message text of a data set built by message_sr_build."""
    for item in ds.get("ContentSequence", []):
        if item.get("ValueType") == "TEXT":
            return str(item.TextValue)
    return ""
