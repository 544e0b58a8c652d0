"""Read a frame's stored values straight from the bytes, without pydicom's decoders.

pydicom's parser costs ~5 us per element, more than windowing and encoding a
small CT or MR frame. Uncompressed little-endian monochrome files (most CT and
MR) are read here with struct: only the element headers are walked, and only
the dozen values the render needs are decoded. Anything else (compressed,
colour, LUT sequences, odd bit depths, surprises) gives None and is left to
pydicom; tests check both paths give the same pixels. The render pipeline
(studies/rendering.py) turns what this module reads into an image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

# Tags read on every render, peeked at without pydicom's value conversion
# (which costs more than the rest of a small frame's render).
ROWS, COLUMNS, SAMPLES = 0x00280010, 0x00280011, 0x00280002
ALLOCATED, STORED, SIGNED = 0x00280100, 0x00280101, 0x00280103
FRAMES, PHOTOMETRIC = 0x00280008, 0x00280004
SLOPE, INTERCEPT = 0x00281053, 0x00281052
CENTER, WIDTH = 0x00281050, 0x00281051
MODALITY_LUT_SEQUENCE, VOI_LUT_SEQUENCE = 0x00283000, 0x00283010
PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_PIXEL_DATA = 0x7FE00010, 0x7FE00008, 0x7FE00009
PIXEL_DATA_TAGS = (PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_PIXEL_DATA)

IMPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2"
NATIVE_LITTLE_ENDIAN = {IMPLICIT_LITTLE_ENDIAN, "1.2.840.10008.1.2.1"}

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR"}
_LONG_VRS |= {b"UT", b"SV", b"UV"}
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_FAST_WANTED = {
    ROWS: "US",
    COLUMNS: "US",
    SAMPLES: "US",
    ALLOCATED: "US",
    STORED: "US",
    SIGNED: "US",
    FRAMES: "IS",
    PHOTOMETRIC: "CS",
    SLOPE: "DS",
    INTERCEPT: "DS",
    CENTER: "DS",
    WIDTH: "DS",
}
# Present -> not a plain file for this path (LUTs, float or odd pixel data).
_FAST_REFUSED = {
    MODALITY_LUT_SEQUENCE,
    VOI_LUT_SEQUENCE,
    0x00281201,  # Red Palette Color LUT Data
    FLOAT_PIXEL_DATA,
    DOUBLE_PIXEL_DATA,
}

_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHI")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class _NotFast(Exception):
    pass


def _value(raw, kind, *, little=True):
    """Decode raw bytes as US (int), IS/DS (the first number) or CS (str).

    Raises ValueError or UnicodeDecodeError for a value that does not parse.
    """
    if kind == "US":
        if len(raw) < 2:
            return None
        return int.from_bytes(raw[:2], "little" if little else "big")
    text = raw.decode("latin-1").strip(" \x00")
    if kind == "CS":
        return text
    first = text.split("\\")[0].strip()
    return float(first) if first else None


def _first_number(value):
    if value is None or value == "":
        return None
    if (
        isinstance(value, list | tuple)
        or hasattr(value, "__getitem__")
        and not (isinstance(value, str | bytes))
    ):
        value = value[0] if len(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def peek(ds, tag, kind):
    """Return the first value of a pydicom data set's top-level element.

    ``kind`` is "US" (an int), "IS"/"DS" (a float) or "CS" (a str); None when
    the element is absent or unreadable.
    """
    elem = ds.get_item(tag)
    if elem is None:
        return None
    value = elem.value
    try:
        if isinstance(value, bytes):
            return _value(value, kind, little=ds.original_encoding[1] is not False)
        if kind == "CS":
            return str(value).strip()
        number = _first_number(value)
        if number is None:
            return None
        return int(number) if kind == "US" else number
    except (TypeError, ValueError, UnicodeDecodeError):
        return None


def _plain_dtype(*, samples, allocated, stored, signed):
    """Return the numpy dtype of plain monochrome pixel data, or None.

    Bit packing, high bits and colour are left to pydicom's decoder.
    """
    if (samples or 1) != 1 or allocated not in (8, 16):
        return None
    if (stored or allocated) != allocated:
        return None
    return np.dtype(f"<{'i' if signed == 1 else 'u'}{allocated // 8}")


def native_frame(ds, frame):
    """Return a frame of a data set's uncompressed little-endian data, or None.

    This skips pydicom's generic decoder for the common CT/MR case; anything
    unusual (bit packing, high bits, colour, short data) takes the generic path.
    """
    syntax = ds.file_meta.get("TransferSyntaxUID", "")
    if str(syntax) not in NATIVE_LITTLE_ENDIAN:
        return None
    rows, cols = peek(ds, ROWS, "US"), peek(ds, COLUMNS, "US")
    dtype = _plain_dtype(
        samples=peek(ds, SAMPLES, "US"),
        allocated=peek(ds, ALLOCATED, "US"),
        stored=peek(ds, STORED, "US"),
        signed=peek(ds, SIGNED, "US"),
    )
    if not rows or not cols or dtype is None:
        return None
    elem = ds.get_item(PIXEL_DATA)
    raw = elem.value if elem is not None else None
    size = rows * cols * dtype.itemsize
    start = (frame or 0) * size
    if not isinstance(raw, bytes) or len(raw) < start + size:
        return None
    return np.frombuffer(raw, dtype=dtype, count=rows * cols, offset=start).reshape(
        rows, cols
    )


@dataclass(frozen=True)
class PlainFile:
    """An uncompressed little-endian monochrome file, its header values read."""

    data: bytes
    values: dict
    offset: int
    dtype: np.dtype
    rows: int
    columns: int
    frames: int

    def frame(self, index):
        """Return the stored values of one frame (rows, columns)."""
        count = self.rows * self.columns
        return np.frombuffer(
            self.data,
            dtype=self.dtype,
            count=count,
            offset=self.offset + index * count * self.dtype.itemsize,
        ).reshape(self.rows, self.columns)


def _element_header(data, pos, implicit):
    """Return (tag, length, value_position) of the element at pos."""
    if implicit:
        group, element, length = _IMPLICIT_HEADER.unpack_from(data, pos)
        return (group << 16) | element, length, pos + 8
    group, element, vr, length = _EXPLICIT_HEADER.unpack_from(data, pos)
    tag = (group << 16) | element
    if group == 0xFFFE:  # item and delimiters: no VR, 4-byte length
        return tag, _U32.unpack_from(data, pos + 4)[0], pos + 8
    if vr in _LONG_VRS:
        return tag, _U32.unpack_from(data, pos + 8)[0], pos + 12
    if not vr.isalpha():
        raise _NotFast("implicit VR inside an explicit data set")
    return tag, length, pos + 8


def _skip_undefined(data, pos, implicit):
    """Skip the items of an undefined-length sequence; return the end."""
    while True:
        tag, length, pos = _element_header(data, pos, True)
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _NotFast("broken sequence")
        if length != _UNDEFINED:
            pos += length
            continue
        while True:  # an item of undefined length: its elements, then ITEM_END
            tag, length, pos = _element_header(data, pos, implicit)
            if tag == _ITEM_END:
                break
            pos = (
                _skip_undefined(data, pos, implicit)
                if length == _UNDEFINED
                else pos + length
            )


def _fast_header(data, size=None):
    """Return (values by tag, pixel data offset, length) of a plain file.

    ``data`` may be only the first bytes of a file of ``size`` bytes: the
    header must then end within them (else struct.error or _NotFast).
    """
    if len(data) < 144 or data[128:132] != b"DICM":
        raise _NotFast("no preamble")
    pos, syntax = 132, None
    while pos + 8 <= len(data):
        group = _U16.unpack_from(data, pos)[0]
        if group != 0x0002:
            break
        tag, length, value = _element_header(data, pos, False)
        if tag == 0x00020010:
            syntax = bytes(data[value : value + length]).strip(b" \x00").decode()
        pos = value + length
    if syntax not in NATIVE_LITTLE_ENDIAN:
        raise _NotFast("not native little endian")
    implicit = syntax == IMPLICIT_LITTLE_ENDIAN
    found = {}
    end = len(data)
    size = end if size is None else size
    while pos + 8 <= end:
        tag, length, value = _element_header(data, pos, implicit)
        if tag in _FAST_REFUSED:
            raise _NotFast("needs pydicom")
        if tag == PIXEL_DATA:
            if length == _UNDEFINED or value + length > size:
                raise _NotFast("encapsulated or short pixel data")
            return found, value, length
        if length == _UNDEFINED:
            pos = _skip_undefined(data, value, implicit)
            continue
        if value + length > end:
            raise _NotFast("the header goes on beyond the bytes read")
        kind = _FAST_WANTED.get(tag)
        if kind is not None:
            found[tag] = _value(bytes(data[value : value + length]), kind)
        pos = value + length
    raise _NotFast("no pixel data")


@dataclass(frozen=True)
class PlainHeader:
    """Where a plain file's frames are and what the render needs of its header:
    all of it but the pixels, so that one parse serves every frame."""

    values: dict
    offset: int
    dtype: np.dtype
    rows: int
    columns: int
    frames: int

    @property
    def frame_bytes(self):
        return self.rows * self.columns * self.dtype.itemsize

    def frame_from(self, raw):
        """Return the stored values of one frame from its raw bytes."""
        return np.frombuffer(
            raw, dtype=self.dtype, count=self.rows * self.columns
        ).reshape(self.rows, self.columns)


def plain_header(data, *, size=None):
    """Return the PlainHeader of a plain CT/MR file, or None for any other.

    ``data`` is the file's bytes, or only its first bytes when ``size`` (the
    file's length) is given: None then also when the header goes on beyond them.
    """
    try:
        found, offset, length = _fast_header(data, size)
    except (_NotFast, struct.error, ValueError, UnicodeDecodeError, RecursionError):
        return None
    rows, cols = found.get(ROWS), found.get(COLUMNS)
    if found.get(PHOTOMETRIC) not in ("MONOCHROME1", "MONOCHROME2"):
        return None
    dtype = _plain_dtype(
        samples=found.get(SAMPLES),
        allocated=found.get(ALLOCATED),
        stored=found.get(STORED),
        signed=found.get(SIGNED),
    )
    if not rows or not cols or dtype is None:
        return None
    frames = int(found.get(FRAMES) or 1)
    if length < frames * rows * cols * dtype.itemsize:
        return None
    return PlainHeader(found, offset, dtype, rows, cols, frames)


def plain_file(data):
    """Return the PlainFile of a plain CT/MR file's bytes, or None for any other."""
    header = plain_header(data)
    if header is None:
        return None
    return PlainFile(
        data,
        header.values,
        header.offset,
        header.dtype,
        header.rows,
        header.columns,
        header.frames,
    )
