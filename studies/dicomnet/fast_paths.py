"""Two of pynetdicom's steps per received C-STORE, done without pydicom's writer.

**File Meta.**
With `STORE_RECV_CHUNKED_DATASET`, pynetdicom starts each received data set's
temporary file with a File Meta group built as a pydicom FileMetaDataset and
encoded by pydicom's `write_file_meta_info` (validated, element by element).
For a small image that is a fifth of the receiver's network-side work. The
group is always the same seven elements, Explicit VR Little Endian, so
`install()` lets pynetdicom write the same bytes directly (byte-equal to
pydicom's output; tests/studies/test_dicom_fast_paths.py holds them side by
side).

**The C-STORE response.** pynetdicom turns each response primitive into a
pydicom command-set Dataset and encodes it (twice: once for its group
length). `send_store_response()`, put in front of an association's
`dimse.send_msg`, encodes a C-STORE-RSP of the usual fields (status, and an
Error Comment) straight to its Implicit VR Little Endian bytes, one P-DATA;
any other message, a response with other status fields, or an association
with handlers on EVT_DIMSE_SENT goes through pynetdicom as before.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from pynetdicom import (
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
    dimse_messages,
    evt,
)
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA


class _Meta(NamedTuple):
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str


def _element(group_element: int, vr: bytes, value: bytes) -> bytes:
    tag = struct.pack("<HH", group_element >> 16, group_element & 0xFFFF)
    if vr == b"OB":
        return tag + vr + b"\x00\x00" + struct.pack("<I", len(value)) + value
    return tag + vr + struct.pack("<H", len(value)) + value


def _uid(value) -> bytes:
    data = str(value).encode("ascii", "replace")
    return data + b"\x00" if len(data) % 2 else data


def _text(value) -> bytes:
    data = str(value).encode("ascii", "replace")
    return data + b" " if len(data) % 2 else data


_FIXED_HEAD = _element(0x00020001, b"OB", b"\x00\x01")
_FIXED_TAIL = _element(
    0x00020012, b"UI", _uid(PYNETDICOM_IMPLEMENTATION_UID)
) + _element(0x00020013, b"SH", _text(PYNETDICOM_IMPLEMENTATION_VERSION))


def encode_file_meta(meta: _Meta) -> bytes:
    """Return the File Meta group (0002,xxxx), its group length first."""
    body = b"".join(
        (
            _FIXED_HEAD,
            _element(0x00020002, b"UI", _uid(meta.sop_class_uid)),
            _element(0x00020003, b"UI", _uid(meta.sop_instance_uid)),
            _element(0x00020010, b"UI", _uid(meta.transfer_syntax)),
            _FIXED_TAIL,
        )
    )
    return _element(0x00020000, b"UL", struct.pack("<I", len(body))) + body


def _create_file_meta(*, sop_class_uid, sop_instance_uid, transfer_syntax) -> _Meta:
    return _Meta(sop_class_uid, sop_instance_uid, transfer_syntax)


def _write_file_meta_info(fp, meta: _Meta, enforce_standard: bool = True) -> None:
    fp.write(encode_file_meta(meta))


def install() -> None:
    """Make pynetdicom's C-STORE receive path write the group this way."""
    dimse_messages.create_file_meta = _create_file_meta
    dimse_messages.write_file_meta_info = _write_file_meta_info


# Command set elements (PS3.7 E.1), Implicit VR Little Endian.
def _command(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def _us(value: int) -> bytes:
    return struct.pack("<H", value)


C_STORE_RSP_COMMAND = 0x8001
NO_DATA_SET = 0x0101


def encode_store_response(rsp: C_STORE) -> bytes | None:
    """Return a C-STORE-RSP's command set, or None if it has unusual fields."""
    if rsp.OffendingElement or rsp.Status is None:
        return None
    parts = []
    if rsp.AffectedSOPClassUID:
        parts.append(_command(0x00000002, _uid(rsp.AffectedSOPClassUID)))
    parts.append(_command(0x00000100, _us(C_STORE_RSP_COMMAND)))
    parts.append(_command(0x00000120, _us(rsp.MessageIDBeingRespondedTo)))
    parts.append(_command(0x00000800, _us(NO_DATA_SET)))
    parts.append(_command(0x00000900, _us(rsp.Status)))
    if rsp.ErrorComment:
        parts.append(_command(0x00000902, _text(rsp.ErrorComment)))
    if rsp.AffectedSOPInstanceUID:
        parts.append(_command(0x00001000, _uid(rsp.AffectedSOPInstanceUID)))
    body = b"".join(parts)
    return _command(0x00000000, struct.pack("<I", len(body))) + body


def send_store_response(assoc) -> None:
    """Put the direct C-STORE-RSP encoding in front of `assoc.dimse.send_msg`."""
    dimse = assoc.dimse
    send_msg = dimse.send_msg

    def send(primitive, context_id: int) -> None:
        encoded = None
        if (
            type(primitive) is C_STORE
            and primitive.MessageIDBeingRespondedTo is not None
            and not assoc.get_handlers(evt.EVT_DIMSE_SENT)
        ):
            encoded = encode_store_response(primitive)
        limit = dimse.maximum_pdu_size
        if encoded is None or (limit and len(encoded) + 6 > limit):
            send_msg(primitive, context_id)
            return
        pdata = P_DATA()
        # Message control header 0x03: command information, last fragment.
        pdata.presentation_data_value_list.append((context_id, b"\x03" + encoded))
        dimse.dul.send_pdu(pdata)

    dimse.send_msg = send
