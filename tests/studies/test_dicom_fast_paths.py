"""The receiver's shortcuts give exactly what the libraries they skip would.

studies/dicomnet/fast_paths.py writes a received file's meta group and the
C-STORE response itself, and studies/dicom_import.py reads a header's values
without pydicom's per-access machinery: a sender and the stored file must not
be able to tell. Each is held against the library's own output.
"""

import io
import socket
import tracemalloc
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta

from studies import dicom_import
from studies.dicom_import import DepartmentImport, Outcome
from studies.dicomnet.fast_paths import _Meta, encode_file_meta, encode_store_response
from studies.dicomnet.waiting import PREALLOCATE_MAX, _WaitingSocket
from studies.models import Instance
from tests.factories import DepartmentFactory

DATA = Path(pydicom.data.DATA_ROOT)
LONG_UID = "1.2.826.0.1.3680043.8.498.39166869673399545070947624181277697619"


@pytest.mark.parametrize(
    "sop_class, sop_instance, syntax",
    [
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.45", "1.2.840.10008.1.2.1"),
        ("1.2.840.10008.5.1.4.1.1.4", "1.2.3.4", "1.2.840.10008.1.2"),
        ("1.2.840.10008.5.1.4.1.1.7", LONG_UID, "1.2.840.10008.1.2.4.50"),
    ],
)
def test_the_meta_group_is_the_one_pydicom_writes(sop_class, sop_instance, syntax):
    theirs = io.BytesIO()
    write_file_meta_info(
        theirs,
        create_file_meta(
            sop_class_uid=sop_class,
            sop_instance_uid=sop_instance,
            transfer_syntax=syntax,
        ),
    )
    assert encode_file_meta(_Meta(sop_class, sop_instance, syntax)) == theirs.getvalue()


def _response(status, comment=None, instance="1.2.3.4"):
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    rsp.AffectedSOPInstanceUID = instance
    rsp.Status = status
    if comment:
        rsp.ErrorComment = comment
    return rsp


def _pynetdicom_bytes(rsp):
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    (pdata,) = message.encode_msg(1, 16384)
    ((_, data),) = pdata.presentation_data_value_list
    assert data[:1] == b"\x03"  # command, last fragment
    return data[1:]


@pytest.mark.parametrize(
    "rsp",
    [
        _response(0x0000),
        _response(0xC000, "study 1.2.3 belongs to another department", "1.2.3.45"),
        _response(0xA700, "receiver error", LONG_UID),
        _response(0xC000, "odd", None),
    ],
    ids=["success", "refused", "out of resources", "no instance UID"],
)
def test_the_store_response_is_the_one_pynetdicom_encodes(rsp):
    assert encode_store_response(rsp) == _pynetdicom_bytes(rsp)


def test_a_response_with_other_status_fields_is_left_to_pynetdicom():
    rsp = _response(0xA900)
    rsp.OffendingElement = [0x00100010]
    assert encode_store_response(rsp) is None


def _sample_files():
    files = sorted(DATA.glob("test_files/**/*.dcm")) + sorted(
        DATA.glob("charset_files/*.dcm")
    )
    assert len(files) > 80
    return files


_REFUSED = object()


def _pydicom_or_none(read, argument, *, refused=None):
    try:
        return read(argument)
    except Exception:  # pydicom refuses many malformed samples, in many ways
        return refused


def _shown(value):
    return "" if value is None or value == "" else str(value)


@pytest.mark.filterwarnings("ignore")
def test_the_header_values_are_pydicoms_for_every_sample_file():
    compared = 0
    for path in _sample_files():
        dataset = _pydicom_or_none(pydicom.dcmread, path)
        if dataset is None:
            continue  # pydicom itself refuses it: nothing to hold ours against
        if str(getattr(dataset.file_meta, "TransferSyntaxUID", "")) == (
            dicom_import.DEFLATED
        ):
            continue
        elements = {
            tag: dataset.get_item(tag, keep_deferred=True)
            for tag in list(dataset.keys())
        }
        ours = dicom_import._Values(dataset, dict(elements))
        for keyword in dicom_import.HEADER_KEYWORDS:
            theirs = _pydicom_or_none(dataset.get, keyword, refused=_REFUSED)
            if theirs is _REFUSED:
                continue
            mine = ours.get(keyword)
            assert _shown(mine) == _shown(theirs), (path.name, keyword)
            compared += 1
    assert compared > 1000


def _file_with_trailing_private_element(path):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "TRAIL-1"
    ds.add_new(0x7FE10010, "LO", "ACME")
    ds.add_new(0x7FE11001, "OB", b"\x01" * 4000)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_file_cut_inside_an_element_the_header_skips_is_refused(tmp_path):
    whole = _file_with_trailing_private_element(tmp_path / "whole.dcm")
    assert dicom_import.read_header(whole).patient_id == "TRAIL-1"
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-1000])
    with pytest.raises(dicom_import._Skip, match="truncated"):
        dicom_import.read_header(cut)


@pytest.mark.django_db
def test_a_received_file_never_replaces_a_file_already_at_its_name(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    received = tmp_path / "received.dcm"
    received.write_bytes((DATA / "test_files" / "CT_small.dcm").read_bytes())
    uid = dicom_import.read_header(received).sop_instance_uid
    orphan = tmp_path / "media" / "dicom" / f"{uid}.dcm"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"a file left behind")
    sent = received.read_bytes()

    outcome = DepartmentImport(DepartmentFactory(), receiving=True).import_one(received)

    assert outcome.outcome is Outcome.IMPORTED
    assert orphan.read_bytes() == b"a file left behind"
    stored = Instance.objects.get(sop_instance_uid=uid).file
    assert stored.name != f"dicom/{uid}.dcm"
    assert stored.read() == sent


@pytest.mark.filterwarnings("ignore")
def test_the_transfer_syntax_walked_in_the_bytes_is_pydicoms():
    walked = 0
    for path in _sample_files():
        syntax = dicom_import._plain_transfer_syntax(path.read_bytes())
        if syntax is None:
            continue  # pydicom's reader decides
        meta = pydicom.filereader.read_file_meta_info(path)
        assert syntax == str(meta.TransferSyntaxUID), path.name
        walked += 1
    assert walked > 60
    assert dicom_import._plain_transfer_syntax(b"\0" * 200) is None


def test_a_pdu_is_read_whole_and_a_huge_claimed_length_is_not_allocated():
    ours, peer = socket.socketpair()
    assoc = Association(AE(), "acceptor")
    sock = _WaitingSocket(assoc, client_socket=ours)
    peer.sendall(b"x" * 10_000)
    assert sock.recv(10_000) == bytearray(b"x" * 10_000)
    peer.sendall(b"tail")
    peer.close()
    # The peer claims a PDU of 4 GB and sends 4 bytes: those come back, and
    # nothing of the claimed size was made.
    tracemalloc.start()
    try:
        assert sock.recv(0xFFFF_FFF0) == bytearray(b"tail")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PREALLOCATE_MAX
    ours.close()
