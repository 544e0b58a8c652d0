"""De-identify DICOM data sets for an anonymized download (PS3.15 Annex E).

Follows the Basic Application Level Confidentiality Profile with a curated list
of its attributes and action codes (D: dummy, Z: empty, X: remove, U: new UID
kept consistent), walking every sequence. On top of the table, to be safe:
every private element is removed, every remaining person name (PN) is removed,
and every non-standard UID is replaced, so no instance UID of the source can
survive anywhere in the file. UIDs map old → new deterministically from a secret
salt, so one download (one bucket) keeps Study/Series/SOP/Frame of Reference and
referenced UIDs consistent across its files.
"""

from __future__ import annotations

from django.utils.crypto import salted_hmac
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID_dictionary, generate_uid

METHOD = "DICOM PS3.15 Basic Application Level Confidentiality Profile"  # LO: 64
METHOD_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")

# (tag, action) from PS3.15 Table E.1-1, Basic Profile column. Where the table
# allows a choice (X/Z, X/Z/D) the strictest one that keeps the IOD valid is used.
ACTIONS = {
    # Patient
    0x00100010: "D",  # Patient's Name -> the pseudonym
    0x00100020: "D",  # Patient ID -> the pseudo ID
    0x00100021: "X",  # Issuer of Patient ID
    0x00100024: "X",  # Issuer of Patient ID Qualifiers Sequence
    0x00100030: "Z",  # Patient's Birth Date
    0x00100032: "X",  # Patient's Birth Time
    0x00100040: "Z",  # Patient's Sex
    0x00100050: "X",  # Patient's Insurance Plan Code Sequence
    0x00100101: "X",  # Patient's Primary Language Code Sequence
    0x00100102: "X",  # Patient's Primary Language Modifier Code Sequence
    0x00101000: "X",  # Other Patient IDs
    0x00101001: "X",  # Other Patient Names
    0x00101002: "X",  # Other Patient IDs Sequence
    0x00101005: "X",  # Patient's Birth Name
    0x00101010: "X",  # Patient's Age
    0x00101020: "X",  # Patient's Size
    0x00101030: "X",  # Patient's Weight
    0x00101040: "X",  # Patient's Address
    0x00101060: "X",  # Patient's Mother's Birth Name
    0x00101080: "X",  # Military Rank
    0x00101081: "X",  # Branch of Service
    0x00101090: "X",  # Medical Record Locator
    0x00101100: "X",  # Referenced Patient Photo Sequence
    0x00102000: "X",  # Medical Alerts
    0x00102110: "X",  # Allergies
    0x00102150: "X",  # Country of Residence
    0x00102152: "X",  # Region of Residence
    0x00102154: "X",  # Patient's Telephone Numbers
    0x00102155: "X",  # Patient's Telecom Information
    0x00102160: "X",  # Ethnic Group
    0x00102180: "X",  # Occupation
    0x001021A0: "X",  # Smoking Status
    0x001021B0: "X",  # Additional Patient History
    0x001021C0: "X",  # Pregnancy Status
    0x001021D0: "X",  # Last Menstrual Date
    0x001021F0: "X",  # Patient's Religious Preference
    0x00102203: "X",  # Patient's Sex Neutered
    0x00102297: "X",  # Responsible Person
    0x00102299: "X",  # Responsible Organization
    0x00104000: "X",  # Patient Comments
    0x00081120: "X",  # Referenced Patient Sequence
    0x00380004: "X",  # Referenced Patient Alias Sequence
    0x00380010: "X",  # Admission ID
    0x00380014: "X",  # Issuer of Admission ID Sequence
    0x00380050: "X",  # Special Needs
    0x00380060: "X",  # Service Episode ID
    0x00380062: "X",  # Service Episode Description
    0x00380300: "X",  # Current Patient Location
    0x00380400: "X",  # Patient's Institution Residence
    0x00380500: "X",  # Patient State
    0x00384000: "X",  # Visit Comments
    # Study, visit and request
    0x00080020: "Z",  # Study Date
    0x00080030: "Z",  # Study Time
    0x00080050: "Z",  # Accession Number
    0x00080090: "Z",  # Referring Physician's Name
    0x00080092: "X",  # Referring Physician's Address
    0x00080094: "X",  # Referring Physician's Telephone Numbers
    0x00080096: "X",  # Referring Physician Identification Sequence
    0x00081030: "X",  # Study Description
    0x00081032: "X",  # Procedure Code Sequence
    0x00081048: "X",  # Physician(s) of Record
    0x00081049: "X",  # Physician(s) of Record Identification Sequence
    0x00081060: "X",  # Name of Physician(s) Reading Study
    0x00081062: "X",  # Physician(s) Reading Study Identification Sequence
    0x00081080: "X",  # Admitting Diagnoses Description
    0x00081084: "X",  # Admitting Diagnoses Code Sequence
    0x00081110: "X",  # Referenced Study Sequence
    0x00081111: "X",  # Referenced Performed Procedure Step Sequence
    0x00200010: "Z",  # Study ID
    0x00321032: "X",  # Requesting Physician
    0x00321033: "X",  # Requesting Service
    0x00321060: "X",  # Requested Procedure Description
    0x00321064: "X",  # Requested Procedure Code Sequence
    0x00321070: "X",  # Requested Contrast Agent
    0x00321030: "X",  # Reason for Study
    0x00401002: "X",  # Reason for the Requested Procedure
    0x00324000: "X",  # Study Comments
    0x00400001: "X",  # Scheduled Station AE Title
    0x00400006: "X",  # Scheduled Performing Physician's Name
    0x00400007: "X",  # Scheduled Procedure Step Description
    0x00400009: "X",  # Scheduled Procedure Step ID
    0x00400010: "X",  # Scheduled Station Name
    0x00400011: "X",  # Scheduled Procedure Step Location
    0x00400100: "X",  # Scheduled Procedure Step Sequence
    0x00400241: "X",  # Performed Station AE Title
    0x00400242: "X",  # Performed Station Name
    0x00400243: "X",  # Performed Location
    0x00400244: "X",  # Performed Procedure Step Start Date
    0x00400245: "X",  # Performed Procedure Step Start Time
    0x00400250: "X",  # Performed Procedure Step End Date
    0x00400251: "X",  # Performed Procedure Step End Time
    0x00400253: "X",  # Performed Procedure Step ID
    0x00400254: "X",  # Performed Procedure Step Description
    0x00400275: "X",  # Request Attributes Sequence
    0x00400280: "X",  # Comments on the Performed Procedure Step
    0x00400555: "X",  # Acquisition Context Sequence
    0x00401001: "X",  # Requested Procedure ID
    0x00401400: "X",  # Requested Procedure Comments
    0x00402016: "X",  # Placer Order Number / Imaging Service Request
    0x00402017: "X",  # Filler Order Number / Imaging Service Request
    0x00402400: "X",  # Imaging Service Request Comments
    0x00403001: "X",  # Confidentiality Constraint on Patient Data Description
    # Series, equipment, institution, operators
    0x00080021: "X",  # Series Date
    0x00080022: "X",  # Acquisition Date
    0x00080023: "Z",  # Content Date
    0x00080024: "X",  # Overlay Date
    0x00080025: "X",  # Curve Date
    0x0008002A: "X",  # Acquisition DateTime
    0x00080031: "X",  # Series Time
    0x00080032: "X",  # Acquisition Time
    0x00080033: "Z",  # Content Time
    0x00080034: "X",  # Overlay Time
    0x00080035: "X",  # Curve Time
    0x00080012: "X",  # Instance Creation Date
    0x00080013: "X",  # Instance Creation Time
    0x00080201: "X",  # Timezone Offset From UTC
    0x00080080: "X",  # Institution Name
    0x00080081: "X",  # Institution Address
    0x00080082: "X",  # Institution Code Sequence
    0x00081010: "X",  # Station Name
    0x00081040: "X",  # Institutional Department Name
    0x00081041: "X",  # Institutional Department Type Code Sequence
    0x00081050: "X",  # Performing Physician's Name
    0x00081052: "X",  # Performing Physician Identification Sequence
    0x00081070: "X",  # Operators' Name
    0x00081072: "X",  # Operator Identification Sequence
    0x0008103E: "X",  # Series Description
    0x00082111: "X",  # Derivation Description
    0x00084000: "X",  # Identifying Comments
    0x00181000: "X",  # Device Serial Number
    0x00181002: "U",  # Device UID
    0x00181004: "X",  # Plate ID
    0x00181005: "X",  # Generator ID
    0x00181007: "X",  # Cassette ID
    0x00181008: "X",  # Gantry ID
    0x00181030: "X",  # Protocol Name
    0x00181200: "X",  # Date of Last Calibration
    0x00181201: "X",  # Time of Last Calibration
    0x00181400: "X",  # Acquisition Device Processing Description
    0x00184000: "X",  # Acquisition Comments
    0x0018700A: "X",  # Detector ID
    0x0018A003: "X",  # Contribution Description
    0x00204000: "X",  # Image Comments
    0x00209158: "X",  # Frame Comments
    0x00280303: "X",  # Longitudinal Temporal Information Modified (set below)
    # Structured reports and other content
    0x0040A073: "X",  # Verifying Observer Sequence
    0x0040A075: "X",  # Verifying Observer Name
    0x0040A078: "X",  # Author Observer Sequence
    0x0040A07A: "X",  # Participant Sequence
    0x0040A07C: "X",  # Custodial Organization Sequence
    0x0040A088: "X",  # Verifying Observer Identification Code Sequence
    0x0040A123: "X",  # Person Name
    0x0040A160: "X",  # Text Value
    0x00700006: "X",  # Unformatted Text Value (presentation state annotations)
    0x0040A730: "X",  # Content Sequence
    0x00700084: "X",  # Content Creator's Name
    0x00700086: "X",  # Content Creator's Identification Code Sequence
    0x00880140: "U",  # Storage Media File-set UID
    0x00880200: "X",  # Icon Image Sequence
    0x04000550: "X",  # Modified Attributes Sequence
    0x04000561: "X",  # Original Attributes Sequence
    0x40000010: "X",  # Arbitrary
    0x40004000: "X",  # Text Comments
    0xFFFAFFFA: "X",  # Digital Signatures Sequence
    0x04000100: "X",  # Digital Signature UID
    0x04000402: "X",  # Referenced Digital Signature Sequence
    0x04000403: "X",  # Referenced SOP Instance MAC Sequence
    0x04000404: "X",  # MAC
    0x00080014: "U",  # Instance Creator UID
}

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


def deidentification_salt(scope):
    """Return a secret salt for one scope (e.g. ``f"bucket:{bucket.pk}"``)."""
    return salted_hmac("studies.deidentify", scope, algorithm="sha256").hexdigest()


class Deidentifier:
    """De-identify data sets of one download; the same salt maps UIDs the same.

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
        self._walk(ds, top=True)
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = METHOD
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = METHOD_CODE
        ds.DeidentificationMethodCodeSequence = Sequence([code])
        ds.LongitudinalTemporalInformationModified = "REMOVED"
        self._fix_meta(ds)
        return ds

    def remap_uids(self, ds):
        """Replace only the UIDs of a data set we built ourselves (the message)."""
        self._walk(ds, top=False, uids_only=True)
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
        ):
            if keyword in meta:
                del meta[keyword]
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        if "ImplementationVersionName" in meta:
            del meta.ImplementationVersionName

    def _walk(self, ds, *, top, uids_only=False):
        for tag in list(ds.keys()):
            elem = ds[tag]
            action = None if uids_only else ACTIONS.get(int(tag))
            if action is None and not uids_only:
                group, element = tag.group, tag.element
                if 0x6000 <= group <= 0x60FF and element in (0x3000, 0x4000):
                    action = "X"  # overlay data and comments may carry text
                elif 0x5000 <= group <= 0x50FF:
                    action = "X"  # retired curves
                elif elem.VR in ("DA", "DT", "TM"):
                    # Temporal information is declared REMOVED: no date may stay.
                    action = "Z"
            if action == "D" and top and int(tag) == 0x00100010:
                elem.value = self.patient_name
            elif action == "D" and top and int(tag) == 0x00100020:
                elem.value = self.patient_id
            elif action in ("X", "D"):
                del ds[tag]
            elif action == "Z":
                elem.value = Sequence() if elem.VR == "SQ" else ""
            elif elem.VR == "SQ":
                for item in elem.value:
                    self._walk(item, top=False, uids_only=uids_only)
            elif elem.VR == "UI":
                if tag not in _KEEP_UID_TAGS:
                    self._replace_uid_value(elem)
            elif elem.VR == "PN" and not uids_only:
                del ds[tag]

    def _replace_uid_value(self, elem):
        if elem.value in (None, ""):
            return
        if elem.VM > 1:
            elem.value = [self.uid(v) for v in elem.value]
        else:
            elem.value = self.uid(elem.value)
