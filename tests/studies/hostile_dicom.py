"""Build a set of hostile DICOM files at run time (no committed binaries).

Each builder writes one file into a folder and returns its path. The set: random
bytes, a truncated file, pixel bombs (65535 x 65535 in native, RLE and JPEG),
a deflate bomb, a 2,000,000-frame claim, UIDs with ``../`` and ``/``, and
sequences nested 100,000 deep.
"""

import io
import random
import struct
import zlib
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

TEST_FILES = Path(pydicom.data.DATA_ROOT, "test_files")
BOMB = 65535


def _sample(name, **changes):
    ds = pydicom.dcmread(TEST_FILES / name)
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        setattr(ds, keyword, generate_uid())
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _write(ds, path):
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    path.write_bytes(buffer.getvalue())
    return path


def _explicit(tag, vr, value):
    group, element = tag >> 16, tag & 0xFFFF
    if vr in (b"OB", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def _meta(syntax, sop_uid):
    syntax = syntax.encode() + (b"\0" if len(syntax) % 2 else b"")
    sop_class = b"1.2.840.10008.5.1.4.1.1.7\0"  # Secondary Capture
    sop_uid = sop_uid.encode() + (b"\0" if len(sop_uid) % 2 else b"")
    body = (
        _explicit(0x00020001, b"OB", b"\0\1")
        + _explicit(0x00020002, b"UI", sop_class)
        + _explicit(0x00020003, b"UI", sop_uid)
        + _explicit(0x00020010, b"UI", syntax)
    )
    return (
        b"\0" * 128
        + b"DICM"
        + _explicit(0x00020000, b"UL", struct.pack("<I", len(body)))
        + body
    )


def random_bytes(folder):
    return _write_bytes(folder / "random.dcm", random.Random(15).randbytes(8192))


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


def truncated(folder):
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    return _write_bytes(folder / "truncated.dcm", data[: len(data) * 2 // 3])


def native_bomb(folder):
    ds = _sample("CT_small.dcm", Rows=BOMB, Columns=BOMB)
    return _write(ds, folder / "bomb-native.dcm")


def rle_bomb(folder):
    ds = _sample("MR_small_RLE.dcm", Rows=BOMB, Columns=BOMB)
    return _write(ds, folder / "bomb-rle.dcm")


def jpeg_bomb(folder):
    ds = _sample("SC_rgb_jpeg_dcmtk.dcm", Rows=BOMB, Columns=BOMB)
    return _write(ds, folder / "bomb-jpeg.dcm")


def frames_claim(folder):
    ds = _sample("CT_small.dcm", NumberOfFrames=2_000_000)
    return _write(ds, folder / "frames-2000000.dcm")


def bad_uid(folder, *, keyword, uid, name):
    ds = _sample("CT_small.dcm", **{keyword: uid})
    return _write(ds, folder / name)


def deflate_bomb(folder, *, inflated_mb=300):
    """A deflated data set whose OB element inflates to ``inflated_mb`` MB."""
    sop_uid = generate_uid()
    dataset = (
        _explicit(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0")
        + _explicit(0x00080018, b"UI", sop_uid.encode() + b"\0" * (len(sop_uid) % 2))
        + _explicit(0x0020000D, b"UI", b"1.2.3.4\0")
        + _explicit(0x0020000E, b"UI", b"1.2.3.4.5\0")
    )
    size = inflated_mb * 1024 * 1024
    header = struct.pack("<HH2sHI", 0x0009, 0x0010, b"OB", 0, size)  # private OB
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflater.compress(dataset + header)]
    zeros = bytes(1024 * 1024)
    for _ in range(inflated_mb):
        parts.append(deflater.compress(zeros))
    parts.append(deflater.flush())
    path = folder / "bomb-deflate.dcm"
    path.write_bytes(_meta("1.2.840.10008.1.2.1.99", sop_uid) + b"".join(parts))
    return path


def nested_sequences(folder, *, depth=100_000):
    """Sequences of undefined length, each in an item of the one above."""
    sop_uid = generate_uid()
    open_sq = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
    open_item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close_item = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    close_sq = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    body = (
        _explicit(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0")
        + _explicit(0x00080018, b"UI", sop_uid.encode() + b"\0" * (len(sop_uid) % 2))
        + _explicit(0x0020000D, b"UI", b"1.2.3.4\0")
        + _explicit(0x0020000E, b"UI", b"1.2.3.4.5\0")
        + (open_sq + open_item) * depth
        + (close_item + close_sq) * depth
    )
    path = folder / "nested-100000.dcm"
    path.write_bytes(_meta("1.2.840.10008.1.2.1", sop_uid) + body)
    return path


def hostile_set(folder):
    """Write the whole set into ``folder``; return {name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        random_bytes(folder),
        truncated(folder),
        native_bomb(folder),
        rle_bomb(folder),
        jpeg_bomb(folder),
        deflate_bomb(folder),
        frames_claim(folder),
        bad_uid(folder, keyword="SOPInstanceUID", uid="../../x", name="uid-dots.dcm"),
        bad_uid(
            folder, keyword="SOPInstanceUID", uid="1.2.3/4.5", name="uid-slash.dcm"
        ),
        bad_uid(
            folder, keyword="StudyInstanceUID", uid="../etc/1", name="uid-study.dcm"
        ),
        nested_sequences(folder),
    ]
    return {path.name: path for path in files}
