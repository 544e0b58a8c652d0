"""Render DICOM frames to PNG or WebP, with a file cache and a placeholder.

The pipeline follows PS3.3 C.11: decode one frame, apply the modality LUT
(rescale slope/intercept), the VOI window (given, the file's own, or min/max),
invert MONOCHROME1, convert YBR and palette colour to RGB, and scale to 8 bits.
Rendered bytes are cached on disk keyed by (SOP instance UID, frame, window,
format), so a second view reads a file and never touches pydicom. A file that
cannot be decoded gives a placeholder image, never an exception.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

# Bump when the output of a render changes, so stale cache files are not served.
RENDERER_VERSION = "3"

CONTENT_TYPES = {"png": "image/png", "webp": "image/webp"}

# CT window presets (center, width) in Hounsfield units.
PRESETS = {
    "soft-tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}

THUMBNAIL_SIZE = 128
PLACEHOLDER_SIZE = (512, 384)
SMALL_IMAGE_PIXELS = 96 * 96

_NATIVE_LITTLE_ENDIAN = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


class RenderError(Exception):
    """The frame cannot be rendered (undecodable file or no such frame)."""


class FrameOutOfRange(RenderError):
    """The requested frame index is not in the instance."""


@dataclass(frozen=True)
class Window:
    """A linear VOI window: center and width in output (rescaled) units."""

    center: float
    width: float

    @property
    def key(self):
        return f"c{self.center:g}w{self.width:g}"


@dataclass(frozen=True)
class RenderedImage:
    content: bytes
    content_type: str
    etag: str
    placeholder: bool = False


def window_parse(*, center=None, width=None, preset=None):
    """Return the Window asked for, or None for the file's own window.

    Accepts a preset name or a center/width pair (strings or numbers); anything
    unparsable or a width below 1 means "the file's own window".
    """
    if preset:
        values = PRESETS.get(str(preset))
        return Window(*values) if values else None
    if center in (None, "") or width in (None, ""):
        return None
    try:
        c, w = float(center), float(width)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(c) and np.isfinite(w)) or w < 1:
        return None
    return Window(c, w)


# -- the cache ---------------------------------------------------------------


def _cache_key(*, sop_instance_uid, frame, window_key, fmt):
    raw = f"{RENDERER_VERSION}|{sop_instance_uid}|{frame}|{window_key}|{fmt}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _cache_path(key, fmt):
    return Path(settings.RENDER_CACHE_DIR, key[:2], f"{key}.{fmt}")


def _cache_read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _cache_write(path, content):
    """Write atomically (temp file + rename): readers see all of it or nothing."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        try:
            fh = open(tmp, "wb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(tmp, "wb")  # noqa: SIM115
        with fh:
            fh.write(content)
        os.replace(tmp, path)
    except OSError:
        # A full or read-only disk costs speed, not the image.
        logger.warning("render cache: cannot write %s", path, exc_info=True)


def frame_etag(*, sop_instance_uid, frame, window=None, fmt="png"):
    """Return the ETag of a frame render without rendering it."""
    key = _cache_key(
        sop_instance_uid=sop_instance_uid,
        frame=frame,
        window_key=window.key if window else "auto",
        fmt=fmt,
    )
    return f'"{key[:32]}"'


def frame_render(*, instance, frame=0, window=None, fmt="png"):
    """Return one frame of an Instance as image bytes (cached on disk).

    Raises FrameOutOfRange for a frame the instance does not have; any other
    failure gives the placeholder image (not cached, so a later decoder helps).
    """
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unknown format {fmt!r}")
    if frame < 0 or frame >= max(instance.number_of_frames or 1, 1):
        raise FrameOutOfRange(frame)
    key = _cache_key(
        sop_instance_uid=instance.sop_instance_uid,
        frame=frame,
        window_key=window.key if window else "auto",
        fmt=fmt,
    )
    etag = f'"{key[:32]}"'
    path = _cache_path(key, fmt)
    content = _cache_read(path)
    if content is not None:
        return RenderedImage(content, CONTENT_TYPES[fmt], etag)
    try:
        pixels = frame_pixels(_instance_bytes(instance), frame=frame, window=window)
        content = encode(pixels, fmt=fmt)
    except FrameOutOfRange:
        raise
    except Exception:
        logger.warning(
            "cannot render instance %s frame %s", instance.pk, frame, exc_info=True
        )
        return placeholder_image(fmt=fmt)
    _cache_write(path, content)
    return RenderedImage(content, CONTENT_TYPES[fmt], etag)


def thumbnail_render(*, instance, size=THUMBNAIL_SIZE, fmt="png"):
    """Return a small image of an instance's middle frame (cached on disk)."""
    frame = max(instance.number_of_frames or 1, 1) // 2
    key = _cache_key(
        sop_instance_uid=instance.sop_instance_uid,
        frame=frame,
        window_key=f"thumb{size}",
        fmt=fmt,
    )
    etag = f'"{key[:32]}"'
    path = _cache_path(key, fmt)
    content = _cache_read(path)
    if content is not None:
        return RenderedImage(content, CONTENT_TYPES[fmt], etag)
    try:
        pixels = frame_pixels(_instance_bytes(instance), frame=frame)
        image = Image.fromarray(pixels)
        image.thumbnail((size, size), Image.Resampling.BILINEAR)
        content = encode(np.asarray(image), fmt=fmt)
    except Exception:
        logger.warning("cannot render thumbnail of %s", instance.pk, exc_info=True)
        return placeholder_image(size=(size, size), fmt=fmt)
    _cache_write(path, content)
    return RenderedImage(content, CONTENT_TYPES[fmt], etag)


def _instance_bytes(instance):
    with instance.file.open("rb") as fh:
        return fh.read()


# -- decoding and pixel processing --------------------------------------------


def dataset_read(data):
    """Parse DICOM bytes; repair a missing transfer syntax from the encoding."""
    import pydicom
    from pydicom.uid import (
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    )

    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    meta = ds.file_meta
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        if implicit:
            meta.TransferSyntaxUID = ImplicitVRLittleEndian
        elif little is False:
            meta.TransferSyntaxUID = ExplicitVRBigEndian
        else:
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


# Tags read on every render, peeked at without pydicom's value conversion
# (which costs more than the rest of a small frame's render).
_ROWS, _COLUMNS, _SAMPLES = 0x00280010, 0x00280011, 0x00280002
_ALLOCATED, _STORED, _SIGNED = 0x00280100, 0x00280101, 0x00280103
_FRAMES, _PHOTOMETRIC = 0x00280008, 0x00280004
_SLOPE, _INTERCEPT = 0x00281053, 0x00281052
_CENTER, _WIDTH = 0x00281050, 0x00281051
_PIXEL_DATA = 0x7FE00010
_PIXEL_TAGS = (_PIXEL_DATA, 0x7FE00008, 0x7FE00009)


def _peek(ds, tag, kind):
    """Return the first value of a top-level element: int (US), float (IS/DS)
    or str (CS); None when absent or unreadable."""
    elem = ds.get_item(tag)
    if elem is None:
        return None
    value = elem.value
    try:
        if isinstance(value, bytes):
            if kind == "US":
                if len(value) < 2:
                    return None
                little = ds.original_encoding[1] is not False
                return int.from_bytes(value[:2], "little" if little else "big")
            text = value.decode("latin-1").strip(" \x00")
            if kind == "CS":
                return text
            first = text.split("\\")[0].strip()
            return float(first) if first else None
        if kind == "CS":
            return str(value).strip()
        number = _first_number(value)
        if number is None:
            return None
        return int(number) if kind == "US" else number
    except (TypeError, ValueError, UnicodeDecodeError):
        return None


def frame_pixels(data, *, frame=0, window=None):
    """Return one frame as a uint8 array, (rows, cols) or (rows, cols, 3)."""
    if isinstance(data, bytes | bytearray):
        fast = _fast_frame(data, frame=frame, window=window)
        if fast is not None:
            return fast
        ds = dataset_read(data)
    else:
        ds = data
    frames = int(_peek(ds, _FRAMES, "IS") or 1)
    if frame < 0 or frame >= frames:
        raise FrameOutOfRange(frame)
    if not any(ds.get_item(tag) is not None for tag in _PIXEL_TAGS):
        raise RenderError("no pixel data")
    photometric = _peek(ds, _PHOTOMETRIC, "CS") or "MONOCHROME2"
    arr = _decode(ds, frame=frame if frames > 1 else None)
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        return _to_uint8_color(apply_color_lut(arr, ds))
    if arr.ndim == 3:
        # Colour: the decoders already turned YBR_FULL/_422/RCT/ICT into RGB.
        return _to_uint8_color(arr)
    values = _modality(arr, ds)
    out = _voi(values, ds, window)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


# -- a fast path for plain files ----------------------------------------------
#
# pydicom's parser costs ~5 us per element, more than windowing and encoding a
# small CT or MR frame. Uncompressed little-endian monochrome files (most CT and
# MR) are read here with struct: only the element headers are walked, and only
# the dozen values the render needs are decoded. Anything else (compressed,
# colour, LUT sequences, odd bit depths, surprises) returns None and takes the
# pydicom path; tests check both paths give the same pixels.

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR"}
_LONG_VRS |= {b"UT", b"SV", b"UV"}
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_FAST_WANTED = {
    _ROWS: "US",
    _COLUMNS: "US",
    _SAMPLES: "US",
    _ALLOCATED: "US",
    _STORED: "US",
    _SIGNED: "US",
    _FRAMES: "IS",
    _PHOTOMETRIC: "CS",
    _SLOPE: "DS",
    _INTERCEPT: "DS",
    _CENTER: "DS",
    _WIDTH: "DS",
}
# Present -> not a plain file for this path (LUTs, float or odd pixel data).
_FAST_REFUSED = {0x00283000, 0x00283010, 0x00281201, 0x7FE00008, 0x7FE00009}


class _NotFast(Exception):
    pass


_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHI")
_U32 = struct.Struct("<I")


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


def _fast_header(data):
    """Return (values by tag, pixel data offset, length) of a plain file."""
    if len(data) < 144 or data[128:132] != b"DICM":
        raise _NotFast("no preamble")
    pos, syntax = 132, None
    while pos + 8 <= len(data):
        group = struct.unpack_from("<H", data, pos)[0]
        if group != 0x0002:
            break
        tag, length, value = _element_header(data, pos, False)
        if tag == 0x00020010:
            syntax = bytes(data[value : value + length]).strip(b" \x00").decode()
        pos = value + length
    if syntax not in _NATIVE_LITTLE_ENDIAN:
        raise _NotFast("not native little endian")
    implicit = syntax == "1.2.840.10008.1.2"
    found = {}
    end = len(data)
    while pos + 8 <= end:
        tag, length, value = _element_header(data, pos, implicit)
        if tag in _FAST_REFUSED:
            raise _NotFast("needs pydicom")
        if tag == _PIXEL_DATA:
            if length == _UNDEFINED or value + length > end:
                raise _NotFast("encapsulated or short pixel data")
            return found, value, length
        if length == _UNDEFINED:
            pos = _skip_undefined(data, value, implicit)
            continue
        kind = _FAST_WANTED.get(tag)
        if kind is not None:
            raw = bytes(data[value : value + length])
            if kind == "US":
                found[tag] = struct.unpack_from("<H", raw)[0] if length >= 2 else None
            else:
                text = raw.decode("latin-1").strip(" \x00")
                if kind == "CS":
                    found[tag] = text
                else:
                    first = text.split("\\")[0].strip()
                    found[tag] = float(first) if first else None
        pos = value + length
    raise _NotFast("no pixel data")


def _fast_frame(data, *, frame, window):
    """Render a plain CT/MR frame without pydicom, or return None."""
    try:
        found, offset, length = _fast_header(data)
    except (_NotFast, struct.error, ValueError, UnicodeDecodeError):
        return None
    photometric = found.get(_PHOTOMETRIC)
    allocated = found.get(_ALLOCATED)
    rows, cols = found.get(_ROWS), found.get(_COLUMNS)
    frames = int(found.get(_FRAMES) or 1)
    if photometric not in ("MONOCHROME1", "MONOCHROME2") or not rows or not cols:
        return None
    if (found.get(_SAMPLES) or 1) != 1 or allocated not in (8, 16):
        return None
    if (found.get(_STORED) or allocated) != allocated:
        return None
    if frame < 0 or frame >= frames:
        raise FrameOutOfRange(frame)
    signed = found.get(_SIGNED) == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")
    size = rows * cols * dtype.itemsize
    if length < frames * size:
        return None
    arr = np.frombuffer(
        data, dtype=dtype, count=rows * cols, offset=offset + frame * size
    ).reshape(rows, cols)
    values = arr.astype(np.float32)
    slope, intercept = found.get(_SLOPE), found.get(_INTERCEPT)
    if slope is not None and slope != 1 and np.isfinite(slope):
        values *= slope
    if intercept and np.isfinite(intercept):
        values += intercept
    if window is None:
        window = _valid_window(found.get(_CENTER), found.get(_WIDTH))
    out = _minmax(values) if window is None else _linear(values, window)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


def _decode(ds, *, frame):
    """Decode one frame; plain little-endian data is read straight with numpy."""
    fast = _native_frame(ds, frame)
    if fast is not None:
        return fast
    from pydicom.pixels import pixel_array

    return pixel_array(ds, index=frame, as_rgb=True)


def _native_frame(ds, frame):
    """Return a frame of uncompressed little-endian monochrome data, or None.

    This skips pydicom's generic decoder for the common CT/MR case; anything
    unusual (bit packing, high bits, colour, short data) takes the generic path.
    """
    syntax = ds.file_meta.get("TransferSyntaxUID", "")
    if str(syntax) not in _NATIVE_LITTLE_ENDIAN:
        return None
    allocated = _peek(ds, _ALLOCATED, "US")
    stored = _peek(ds, _STORED, "US") or allocated
    rows, cols = _peek(ds, _ROWS, "US"), _peek(ds, _COLUMNS, "US")
    if (_peek(ds, _SAMPLES, "US") or 1) != 1 or not rows or not cols:
        return None
    if allocated not in (8, 16) or stored != allocated:
        return None
    elem = ds.get_item(_PIXEL_DATA)
    raw = elem.value if elem is not None else None
    signed = _peek(ds, _SIGNED, "US") == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")
    size = rows * cols * dtype.itemsize
    start = (frame or 0) * size
    if not isinstance(raw, bytes) or len(raw) < start + size:
        return None
    return np.frombuffer(raw, dtype=dtype, count=rows * cols, offset=start).reshape(
        rows, cols
    )


def _modality(arr, ds):
    """Apply the modality LUT or rescale slope/intercept; return float32."""
    if ds.get_item(0x00283000) is not None:  # Modality LUT Sequence
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    values = arr.astype(np.float32)
    slope = _peek(ds, _SLOPE, "DS")
    intercept = _peek(ds, _INTERCEPT, "DS")
    if slope is not None and slope != 1 and np.isfinite(slope):
        values *= slope
    if intercept and np.isfinite(intercept):
        values += intercept
    return values


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


def file_window(ds):
    """Return the file's own first VOI window, or None."""
    return _valid_window(_peek(ds, _CENTER, "DS"), _peek(ds, _WIDTH, "DS"))


def _valid_window(center, width):
    if center is None or width is None:
        return None
    if not (np.isfinite(center) and np.isfinite(width)) or width < 1:
        return None
    return Window(center, width)


def _voi(values, ds, window):
    """Window float values to uint8 (PS3.3 C.11.2.1.2.1, linear function)."""
    if window is None:
        window = file_window(ds)
        if window is None and ds.get_item(0x00283010) is not None:  # VOI LUT Seq
            from pydicom.pixels import apply_voi_lut

            try:
                values = np.asarray(apply_voi_lut(values, ds), dtype=np.float32)
            except Exception:  # a broken LUT falls back to min/max
                logger.debug("VOI LUT not applicable", exc_info=True)
    if window is None:
        return _minmax(values)
    return _linear(values, window)


def _linear(values, window):
    c, w = window.center, window.width
    scale = 255.0 / max(w - 1.0, 1.0)
    out = (values - (c - 0.5 - (w - 1.0) / 2.0)) * scale
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _minmax(values):
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0:
        return np.zeros(values.shape, np.uint8)
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    out = (np.nan_to_num(values, nan=low) - low) * (255.0 / (high - low))
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _to_uint8_color(arr):
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    high = float(arr.max()) if arr.size else 0.0
    if high <= 0:
        return np.zeros(arr.shape, np.uint8)
    # Scale by the container's range, so dark images stay dark.
    top = float(np.iinfo(arr.dtype).max) if arr.dtype.kind in "ui" else high
    if arr.dtype.kind in "ui" and high <= 255:
        top = 255.0
    return (arr.astype(np.float32) * (255.0 / top)).clip(0, 255).astype(np.uint8)


# -- encoding ----------------------------------------------------------------


def encode(pixels, *, fmt="png"):
    """Encode a uint8 array losslessly, favouring speed over a few bytes.

    PNG at zlib level 1 is about twice as fast as Pillow's default (6) for
    about 10% more bytes. Below SMALL_IMAGE_PIXELS the zlib set-up costs more
    than the compression saves (a 64x64 MR frame is 4 KB either way), so small
    frames are stored uncompressed (level 0).
    """
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    if fmt == "webp":
        image.save(buffer, "WEBP", lossless=True, method=0)
    else:
        level = 0 if pixels.shape[0] * pixels.shape[1] <= SMALL_IMAGE_PIXELS else 1
        image.save(buffer, "PNG", compress_level=level)
    return buffer.getvalue()


_placeholders = {}


def placeholder_image(*, size=PLACEHOLDER_SIZE, fmt="png", text=None):
    """Return a grey image that says the image cannot be displayed."""
    text = text or _("Image cannot be displayed")
    cache_key = (size, fmt, text)
    if cache_key not in _placeholders:
        width, height = size
        image = Image.new("L", (width, height), 48)
        draw = ImageDraw.Draw(image)
        font_size = max(8, min(28, width // max(len(text) // 2, 1)))
        try:
            font = ImageFont.load_default(size=font_size)
        except (OSError, TypeError):
            font = ImageFont.load_default()
        draw.rectangle((2, 2, width - 3, height - 3), outline=140, width=2)
        draw.text((width / 2, height / 2), text, fill=230, font=font, anchor="mm")
        content = encode(np.asarray(image), fmt=fmt)
        etag = '"placeholder-' + hashlib.sha256(content).hexdigest()[:16] + '"'
        _placeholders[cache_key] = RenderedImage(
            content, CONTENT_TYPES[fmt], etag, placeholder=True
        )
    return _placeholders[cache_key]
