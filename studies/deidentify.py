"""De-identify DICOM data sets for an anonymized share (PS3.15 Annex E).

Applies the Basic Application Level Confidentiality Profile with every
attribute of Table E.1-1 (studies/deid_table.py, generated, its source named
there) and the Clean Structured Content option, walking every sequence:

- Each action as the standard defines it: D (dummy), Z (empty), X (remove),
  K (keep), C (clean), U (new UID). A combined action (Z/D, X/Z, X/D, X/Z/D,
  X/Z/U*) takes the option that keeps the object valid: a dummy where the
  attribute is Type 1, empty where Type 2, removal otherwise. The type is the
  strongest one PS3.3 gives the attribute under the same parent (the top level
  or the enclosing sequence; under a parent the parse does not know, anywhere)
  in any module (deid_table.TYPES): so an object may get a dummy where removal
  would do, never a removal that makes it invalid.
- A D on a sequence keeps its items and cleans them; the Content Sequence (an
  SR's tree) is cleaned as Clean Structured Content says: codes, measurements
  and structure stay; names, dates, UIDs and free text (TEXT items) are
  replaced, so the report keeps its findings but names nobody.
- Beyond the table, to be safe: overlay (60xx) and curve (50xx) groups go
  whole, private elements go, every remaining person name gets a dummy, every
  date or time outside the table is treated like X/Z/D (so no date of the
  source remains and LongitudinalTemporalInformationModified says REMOVED), and
  every non-standard UID is replaced. No Retain option is used.

UIDs map old → new deterministically from a secret salt, so one bucket keeps
Study/Series/SOP/Frame of Reference and referenced UIDs consistent across its
files and its message SR.

What cannot be cleaned this way is left out of an anonymized share
(``instance_is_cleanable``): encapsulated documents, and images whose pixels may
carry burned-in text.
"""

from __future__ import annotations

from django.utils.crypto import salted_hmac
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID_dictionary, generate_uid

from .deid_table import ACTIONS, MASKED_ACTIONS, TYPES

METHOD = "DICOM PS3.15 Basic Application Level Confidentiality Profile"  # LO: 64
METHOD_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
CLEAN_STRUCTURED_CONTENT_CODE = ("113104", "DCM", "Clean Structured Content Option")

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
CONTENT_SEQUENCE = 0x0040A730
TEXT_VALUE = 0x0040A160

# Elements that carry UIDs of the standard or of software, never of the patient.
_KEEP_UID_TAGS = {
    Tag(0x00080016),  # SOP Class UID
    Tag(0x00081150),  # Referenced SOP Class UID
    Tag(0x0008111A),  # Referenced SOP Class UID (retired ref)
    Tag(0x00041510),  # Referenced SOP Class UID in File
    Tag(0x00041512),  # Referenced Transfer Syntax UID in File
    Tag(0x0008010C),  # Coding Scheme UID
    Tag(0x00080117),  # Context UID
    Tag(0x0040DB0C),  # Template Extension Organization UID
    Tag(0x0040DB0D),  # Template Extension Creator UID
}

# Dummy values by VR: valid, and recognisably not the patient's.
_DUMMY_TEXT = "ANONYMIZED"
_DUMMIES = {
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "AE": "ANONYMOUS",
    "CS": _DUMMY_TEXT,
    "PN": "Anonymized",
    "UR": "",
    "IS": "0",
    "DS": "0",
}
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
_NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"}
_TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC"}
_SCRUBBED_TEXT_VRS = _TEXT_VRS | {"PN"}

# Encapsulated documents: a report (PDF, CDA) or a model an anonymized share
# never shows, and whose content no profile can clean.
ENCAPSULATED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.104.2",  # Encapsulated CDA
    "1.2.840.10008.5.1.4.1.1.104.3",  # Encapsulated STL
    "1.2.840.10008.5.1.4.1.1.104.4",  # Encapsulated OBJ
    "1.2.840.10008.5.1.4.1.1.104.5",  # Encapsulated MTL
}
# Kinds of image that often carry text in their pixels (ultrasound, secondary
# capture, photographs, video): left out unless they say BurnedInAnnotation NO.
_PHOTOGRAPHIC_MODALITIES = {"US", "IVUS", "XC", "ES", "GM", "SM", "OP", "DOC", "OT"}
_PHOTOGRAPHIC_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.3.",  # ultrasound multi-frame (retired and current)
    "1.2.840.10008.5.1.4.1.1.6.",  # ultrasound
    "1.2.840.10008.5.1.4.1.1.7",  # secondary capture (7, 7.1 … 7.4)
    "1.2.840.10008.5.1.4.1.1.77.1.",  # visible light (endoscopy, photographs…)
)


def instance_is_cleanable(*, sop_class_uid, modality, burned_in_annotation):
    """Say whether an instance may travel in an anonymized share.

    Encapsulated documents never do; an image that says BurnedInAnnotation YES
    never does; an ultrasound, secondary capture or photographic image does only
    when it says NO.
    """
    sop_class_uid = (sop_class_uid or "").strip()
    flag = (burned_in_annotation or "").strip().upper()
    if sop_class_uid in ENCAPSULATED_SOP_CLASSES:
        return False
    if flag == "YES":
        return False
    if flag == "NO":
        return True
    photographic = (modality or "").strip().upper() in _PHOTOGRAPHIC_MODALITIES or (
        sop_class_uid.startswith(_PHOTOGRAPHIC_SOP_PREFIXES)
    )
    return not photographic


def left_out_q(prefix=""):
    """Return the Q that finds, among instances, those ``instance_is_cleanable``
    refuses (``prefix`` reaches Instance from another model, e.g. "instances__").
    """
    from django.db.models import Q

    photographic = Q(**{f"{prefix}series__modality__in": _PHOTOGRAPHIC_MODALITIES})
    for sop_prefix in _PHOTOGRAPHIC_SOP_PREFIXES:
        photographic |= Q(**{f"{prefix}sop_class_uid__startswith": sop_prefix})
    return (
        Q(**{f"{prefix}sop_class_uid__in": ENCAPSULATED_SOP_CLASSES})
        | Q(**{f"{prefix}burned_in_annotation": "YES"})
        | (Q(**{f"{prefix}burned_in_annotation": ""}) & photographic)
    )


def deidentification_salt(scope):
    """Return a secret salt for one scope (e.g. ``f"bucket:{bucket.pk}"``)."""
    return salted_hmac("studies.deidentify", scope, algorithm="sha256").hexdigest()


def table_action(tag):
    """Return the Basic Profile action of a tag (None when the table has none)."""
    tag = int(tag)
    action = ACTIONS.get(tag)
    if action is not None:
        return action
    group, element = tag >> 16, tag & 0xFFFF
    for (g, e, gmask, emask), masked in MASKED_ACTIONS.items():
        if group & gmask == g and element & emask == e:
            return masked
    return None


def _strongest_type(tag, parent):
    # A parent PS3.3's parse does not list (a functional group macro, mostly)
    # takes the strongest type the attribute has anywhere.
    types = TYPES.get(int(tag))
    if not types:
        return "3"
    return types.get(parent) or min(types.values())


def choose_action(action, *, tag, parent):
    """Return the one action (D, Z, X, K, C, U) that keeps the object valid."""
    if "/" not in action:
        return action
    options = action.split("/")
    kind = _strongest_type(tag, parent)
    if kind == "1":
        for option in ("D", "U*", "Z"):
            if option in options:
                return option.rstrip("*")
    if kind in ("1", "2"):
        for option in ("Z", "D"):
            if option in options:
                return option
    return "X" if "X" in options else options[0].rstrip("*")


def deidentification_mark(ds, *, structured_content=False):
    """Say in a data set that and how its identity was removed."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    codes = [METHOD_CODE]
    if structured_content:
        codes.append(CLEAN_STRUCTURED_CONTENT_CODE)
    items = []
    for value, scheme, meaning in codes:
        code = Dataset()
        code.CodeValue = value
        code.CodingSchemeDesignator = scheme
        code.CodeMeaning = meaning
        items.append(code)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = "REMOVED"


class Deidentifier:
    """De-identify data sets of one share; the same salt maps UIDs the same.

    ``pseudonym`` is any object with ``given_name``, ``family_name`` and
    ``pseudo_patient_id`` (sharing's Pseudonym fits); the patient name becomes
    ``family^given`` ("Anonymous^4821").
    """

    def __init__(self, *, salt, pseudonym):
        self.salt = str(salt)
        self.patient_name = f"{pseudonym.family_name}^{pseudonym.given_name}"
        self.patient_id = str(pseudonym.pseudo_patient_id)
        self._uids = {}

    def uid(self, old):
        """Return the replacement of a UID; standard UIDs are kept."""
        old = str(old).strip().rstrip("\x00")
        if not old or old in UID_dictionary:
            return old
        new = self._uids.get(old)
        if new is None:
            new = generate_uid(entropy_srcs=[self.salt, old])
            self._uids[old] = new
        return new

    def apply(self, ds):
        """De-identify a data set in place (and its file meta) and return it."""
        ds.remove_private_tags()
        structured = CONTENT_SEQUENCE in ds
        self._walk(ds, parent=0, scrub=False)
        deidentification_mark(ds, structured_content=structured)
        self._fix_meta(ds)
        return ds

    def remap_uids(self, ds):
        """Replace only the UIDs of a data set we built ourselves (the message)."""
        self._walk_uids(ds)
        self._fix_meta(ds)
        return ds

    def _fix_meta(self, ds):
        meta = getattr(ds, "file_meta", None)
        if meta is None:
            meta = ds.file_meta = FileMetaDataset()
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if "SOPClassUID" in ds:
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
        for keyword in (
            "SourceApplicationEntityTitle",
            "SendingApplicationEntityTitle",
            "ReceivingApplicationEntityTitle",
            "SourcePresentationAddress",
            "SendingPresentationAddress",
            "ReceivingPresentationAddress",
            "PrivateInformationCreatorUID",
            "PrivateInformation",
        ):
            if keyword in meta:
                del meta[keyword]
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        if "ImplementationVersionName" in meta:
            del meta.ImplementationVersionName

    def _walk_uids(self, ds):
        for elem in ds:
            if elem.VR == "SQ":
                for item in elem.value:
                    self._walk_uids(item)
            elif elem.VR == "UI" and elem.tag not in _KEEP_UID_TAGS:
                self._replace_uid_value(elem)

    def _walk(self, ds, *, parent, scrub):
        """Apply the profile to one data set (an item when ``parent`` is a tag).

        ``scrub``: inside a sequence the table says to replace by a dummy, so
        every text value left gets a dummy too (a person's code, an ID).
        """
        for tag in list(ds.keys()):
            elem = ds[tag]
            action = self._action_for(elem, parent=parent)
            if action is None:
                self._untabled(ds, elem, parent=parent, scrub=scrub)
            elif action == "X":
                del ds[tag]
            elif action == "Z":
                elem.value = Sequence() if elem.VR == "SQ" else _empty(elem.VR)
            elif action == "K":
                continue
            elif elem.VR == "SQ":  # D, C or U on a sequence: keep it, cleaned
                inner_scrub = scrub or (action == "D" and int(tag) != CONTENT_SEQUENCE)
                for item in elem.value:
                    self._walk(item, parent=int(tag), scrub=inner_scrub)
            elif elem.VR == "UI":  # U, or a D on a UID: a consistent new UID
                self._replace_uid_value(elem)
            else:  # D or C on a value
                self._dummy(elem, top=parent == 0)

    def _action_for(self, elem, *, parent):
        tag = elem.tag
        if parent == 0 and int(tag) in (PATIENT_NAME, PATIENT_ID):
            return "D"  # the pseudonym (rule 12), whatever the table's Z or Z/D
        if 0x5000 <= tag.group <= 0x50FF or 0x6000 <= tag.group <= 0x60FF:
            return "X"  # curves and overlays go as whole groups
        if int(tag) == TEXT_VALUE:
            return "C"  # free text of a structured report: Clean Structured Content
        action = table_action(tag)
        if action is None:
            if elem.VR in ("DA", "DT", "TM"):
                action = "X/Z/D"  # no date of the source stays (see the docstring)
            else:
                return None
        return choose_action(action, tag=tag, parent=parent)

    def _untabled(self, ds, elem, *, parent, scrub):
        if elem.VR == "SQ":
            for item in elem.value:
                self._walk(item, parent=int(elem.tag), scrub=scrub)
        elif elem.VR == "UI":
            if elem.tag not in _KEEP_UID_TAGS:
                self._replace_uid_value(elem)
        elif elem.value not in (None, "") and (
            elem.VR == "PN" or (scrub and elem.VR in _SCRUBBED_TEXT_VRS)
        ):
            self._dummy(elem)

    def _dummy(self, elem, *, top=False):
        tag = int(elem.tag)
        if top and tag == PATIENT_NAME:
            elem.value = self.patient_name
        elif top and tag == PATIENT_ID:
            elem.value = self.patient_id
        elif elem.VR in _BINARY_VRS:
            elem.value = b"\x00\x00"
        elif elem.VR in _NUMBER_VRS:
            elem.value = 0
        elif elem.VR in _TEXT_VRS:
            elem.value = _DUMMY_TEXT
        elif tag == 0x04000565:  # Reason for the Attribute Modification: a term
            elem.value = "CORRECT"
        else:
            elem.value = _DUMMIES.get(elem.VR, _DUMMY_TEXT)

    def _replace_uid_value(self, elem):
        if elem.value in (None, ""):
            return
        if elem.VM > 1:
            elem.value = [self.uid(v) for v in elem.value]
        else:
            elem.value = self.uid(elem.value)


def _empty(vr):
    return b"" if vr in _BINARY_VRS else None if vr in _NUMBER_VRS else ""
