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
import tempfile
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
    """Write atomically: readers see the whole file or none."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
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


def frame_pixels(data, *, frame=0, window=None):
    """Return one frame as a uint8 array, (rows, cols) or (rows, cols, 3)."""
    ds = data if not isinstance(data, bytes | bytearray) else dataset_read(data)
    frames = int(ds.get("NumberOfFrames") or 1)
    if frame < 0 or frame >= frames:
        raise FrameOutOfRange(frame)
    if not any(
        k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
    ):
        raise RenderError("no pixel data")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
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
    if str(ds.file_meta.get("TransferSyntaxUID", "")) not in _NATIVE_LITTLE_ENDIAN:
        return None
    try:
        samples = int(ds.get("SamplesPerPixel", 1))
        allocated = int(ds.BitsAllocated)
        stored = int(ds.get("BitsStored", allocated))
        signed = int(ds.get("PixelRepresentation", 0)) == 1
        rows, cols = int(ds.Rows), int(ds.Columns)
        raw = ds["PixelData"].value
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if samples != 1 or allocated not in (8, 16) or stored != allocated:
        return None
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
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    values = arr.astype(np.float32)
    try:
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
    except (TypeError, ValueError):
        slope, intercept = 1.0, 0.0
    if slope != 1:
        values *= slope
    if intercept:
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
    center = _first_number(ds.get("WindowCenter"))
    width = _first_number(ds.get("WindowWidth"))
    if center is None or width is None or width < 1:
        return None
    return Window(center, width)


def _voi(values, ds, window):
    """Window float values to uint8 (PS3.3 C.11.2.1.2.1, linear function)."""
    if window is None:
        window = file_window(ds)
        if window is None and "VOILUTSequence" in ds:
            from pydicom.pixels import apply_voi_lut

            try:
                values = np.asarray(apply_voi_lut(values, ds), dtype=np.float32)
            except Exception:  # a broken LUT falls back to min/max
                logger.debug("VOI LUT not applicable", exc_info=True)
    if window is None:
        return _minmax(values)
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
    """Encode a uint8 array; PNG at compress level 1 (size vs. speed, lossless)."""
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    if fmt == "webp":
        image.save(buffer, "WEBP", lossless=True, method=0)
    else:
        image.save(buffer, "PNG", compress_level=1)
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
