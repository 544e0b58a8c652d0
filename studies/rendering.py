"""Render DICOM frames to PNG or WebP, with a file cache and a placeholder.

The pipeline follows PS3.3 C.11: decode one frame, apply the modality LUT
(rescale slope/intercept), the VOI window (given, the file's own, or min/max),
invert MONOCHROME1, convert YBR and palette colour to RGB, and scale to 8 bits.
Rendered bytes are cached on disk keyed by (SOP instance UID, frame, window,
format), so a second view reads a file and never touches pydicom. A file that
cannot be decoded gives a placeholder image, never an exception. Plain
uncompressed files are read by studies/frame_reader.py instead of pydicom.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont

from .frame_reader import (
    ALLOCATED,
    CENTER,
    COLUMNS,
    FRAMES,
    INTERCEPT,
    MODALITY_LUT_SEQUENCE,
    PHOTOMETRIC,
    PIXEL_DATA_TAGS,
    ROWS,
    SAMPLES,
    SLOPE,
    VOI_LUT_SEQUENCE,
    WIDTH,
    native_frame,
    peek,
    plain_file,
    plain_header,
)

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
# Parsed headers of plain files kept per process, keyed by file, mtime and size:
# every frame of a multi-frame file (and every window of a frame) reuses one.
HEADER_CACHE_ENTRIES = 512
# The first bytes read to parse a header; a longer one takes the full read.
HEADER_READ_BYTES = 64 * 1024
# Frames of at most SMALL_IMAGE_PIXELS render (header parsed) faster than the
# disk cache writes a file (~0.1-0.3 ms of kernel time on ext4): their images
# are kept in memory, per process, up to this many bytes, and never on disk.
MEMORY_CACHE_BYTES = 16 * 1024 * 1024


class RenderError(Exception):
    """The frame cannot be rendered (undecodable file or no such frame)."""


class FrameOutOfRange(RenderError):
    """The requested frame index is not in the instance."""


class TooLarge(RenderError):
    """The file's pixels are beyond DICOM_MAX_FRAME_PIXELS / DICOM_MAX_PIXEL_BYTES."""


def check_extent(*, rows, columns, samples, bits, frames):
    """Raise TooLarge before decoding what the limits would not allow.

    The decoders allocate rows x columns x samples (x frames, for some) from the
    header alone, whatever the data holds: a 65535 x 65535 RLE header asks
    for gigabytes.
    """
    pixels = (rows or 0) * (columns or 0) * (samples or 1)
    if pixels > settings.DICOM_MAX_FRAME_PIXELS:
        raise TooLarge(f"{rows}x{columns} pixels")
    if (pixels * (bits or 8) * max(frames or 1, 1) + 7) // 8 > (
        settings.DICOM_MAX_PIXEL_BYTES
    ):
        raise TooLarge(f"{frames} frames of {rows}x{columns} pixels")


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


def _etag(key):
    return f'"{key[:32]}"'


def _window_key(window):
    return window.key if window else "auto"


def _cache_path(key, fmt):
    # A plain string: building a Path costs a third of a small frame's encode.
    return os.path.join(settings.RENDER_CACHE_DIR, key[:2], f"{key}.{fmt}")


def _cache_read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _cache_write(path, content):
    """Write atomically (temp file + rename): readers see all of it or nothing."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}")
    try:
        try:
            fh = open(tmp, "wb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            fh = open(tmp, "wb")  # noqa: SIM115
        with fh:
            fh.write(content)
        os.replace(tmp, path)
    except OSError:
        # A full or read-only disk costs speed, not the image.
        logger.warning("render cache: cannot write %s", path, exc_info=True)


class _MemoryCache:
    """A least-recently-used map bounded by the bytes of its values (thread-safe)."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.size = 0
        self.items = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            content = self.items.get(key)
            if content is not None:
                self.items.move_to_end(key)
            return content

    def put(self, key, content):
        if len(content) > self.max_bytes:
            return
        with self.lock:
            old = self.items.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self.items[key] = content
            self.size += len(content)
            while self.size > self.max_bytes:
                _key, dropped = self.items.popitem(last=False)
                self.size -= len(dropped)

    def clear(self):
        with self.lock:
            self.items.clear()
            self.size = 0


_small_images = _MemoryCache(MEMORY_CACHE_BYTES)


def _cached_render(*, sop_instance_uid, frame, window_key, fmt, render):
    """Return the cached image, or the one render() encodes, then cache it.

    render() returns (image bytes, whether it was cheap), or None when the file
    cannot be rendered: then the result is None and nothing is cached, so a
    later decoder helps. A cheap image (a small frame) is kept in memory, any
    other on disk.
    """
    key = _cache_key(
        sop_instance_uid=sop_instance_uid, frame=frame, window_key=window_key, fmt=fmt
    )
    content = _small_images.get(key)
    if content is None:
        path = _cache_path(key, fmt)
        content = _cache_read(path)
        if content is None:
            rendered = render()
            if rendered is None:
                return None
            content, cheap = rendered
            if cheap:
                _small_images.put(key, content)
            else:
                _cache_write(path, content)
    return RenderedImage(content, CONTENT_TYPES[fmt], _etag(key))


def frame_etag(*, sop_instance_uid, frame, window=None, fmt="png"):
    """Return the ETag of a frame render without rendering it."""
    key = _cache_key(
        sop_instance_uid=sop_instance_uid,
        frame=frame,
        window_key=_window_key(window),
        fmt=fmt,
    )
    return _etag(key)


def frame_render(*, instance, frame=0, window=None, fmt="png"):
    """Return one frame of an Instance as image bytes (cached on disk).

    Raises FrameOutOfRange for a frame the instance does not have; any other
    failure gives the placeholder image.
    """
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unknown format {fmt!r}")
    if frame < 0 or frame >= instance.frame_count:
        raise FrameOutOfRange(frame)

    def render():
        try:
            pixels = _plain_frame_pixels(instance, frame=frame, window=window)
            if pixels is None:
                data = _instance_bytes(instance)
                pixels = frame_pixels(data, frame=frame, window=window)
            cheap = pixels.shape[0] * pixels.shape[1] <= SMALL_IMAGE_PIXELS
            return encode(pixels, fmt=fmt), cheap
        except FrameOutOfRange:
            raise
        except Exception:
            logger.warning(
                "cannot render instance %s frame %s", instance.pk, frame, exc_info=True
            )
            return None

    rendered = _cached_render(
        sop_instance_uid=instance.sop_instance_uid,
        frame=frame,
        window_key=_window_key(window),
        fmt=fmt,
        render=render,
    )
    return rendered or placeholder_image(fmt=fmt)


def thumbnail_render(*, instance, size=THUMBNAIL_SIZE, fmt="png"):
    """Return a small image of an instance's middle frame (cached on disk)."""
    frame = instance.frame_count // 2

    def render():
        try:
            pixels = _plain_frame_pixels(instance, frame=frame, window=None)
            if pixels is None:
                pixels = frame_pixels(_instance_bytes(instance), frame=frame)
            cheap = pixels.shape[0] * pixels.shape[1] <= SMALL_IMAGE_PIXELS
            image = Image.fromarray(pixels)
            image.thumbnail((size, size), Image.Resampling.BILINEAR)
            return encode(np.asarray(image), fmt=fmt), cheap
        except Exception:
            logger.warning("cannot render thumbnail of %s", instance.pk, exc_info=True)
            return None

    rendered = _cached_render(
        sop_instance_uid=instance.sop_instance_uid,
        frame=frame,
        window_key=f"thumb{size}",
        fmt=fmt,
        render=render,
    )
    return rendered or placeholder_image(size=(size, size), fmt=fmt)


def _instance_bytes(instance):
    with instance.file.open("rb") as fh:
        return fh.read()


_headers = OrderedDict()
_headers_lock = threading.Lock()
_NOT_PLAIN = object()


def _instance_path(instance):
    """Return the local path of an instance's file, or None (other storages)."""
    try:
        return os.fspath(instance.file.path)
    except (AttributeError, NotImplementedError, ValueError, TypeError):
        return None


def _header_of(path, fd):
    """Return the PlainHeader of the open file at path, parsed once per version of
    the file (mtime, size, inode), or None when it is no plain file."""
    stat = os.fstat(fd)
    key = (path, stat.st_mtime_ns, stat.st_size, stat.st_ino)
    with _headers_lock:
        header = _headers.get(key)
        if header is not None:
            _headers.move_to_end(key)
    if header is None:
        head = os.pread(fd, HEADER_READ_BYTES, 0)
        header = plain_header(head, size=stat.st_size) or _NOT_PLAIN
        with _headers_lock:
            _headers[key] = header
            while len(_headers) > HEADER_CACHE_ENTRIES:
                _headers.popitem(last=False)
    return None if header is _NOT_PLAIN else header


def _plain_frame_pixels(instance, *, frame, window):
    """Render a frame of a plain CT/MR file from its parsed header and that one
    frame's bytes (read with pread), or return None for the generic path."""
    path = _instance_path(instance)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        header = _header_of(path, fd)
        if header is None:
            return None
        if frame < 0 or frame >= header.frames:
            raise FrameOutOfRange(frame)
        check_extent(
            rows=header.rows,
            columns=header.columns,
            samples=1,
            bits=header.dtype.itemsize * 8,
            frames=header.frames,
        )
        size = header.frame_bytes
        raw = os.pread(fd, size, header.offset + frame * size)
    finally:
        os.close(fd)
    if len(raw) < size:
        return None  # the file shrank: the generic path says what is wrong
    return _plain_pixels(header, header.frame_from(raw), window)


def _plain_pixels(header, stored, window):
    values = _rescale(stored, header.values.get(SLOPE), header.values.get(INTERCEPT))
    if window is None:
        window = _valid_window(header.values.get(CENTER), header.values.get(WIDTH))
    return _grey(values, window, header.values.get(PHOTOMETRIC))


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
    if isinstance(data, bytes | bytearray):
        fast = _fast_frame(data, frame=frame, window=window)
        if fast is not None:
            return fast
        ds = dataset_read(data)
    else:
        ds = data
    frames = int(peek(ds, FRAMES, "IS") or 1)
    if frame < 0 or frame >= frames:
        raise FrameOutOfRange(frame)
    if not any(ds.get_item(tag) is not None for tag in PIXEL_DATA_TAGS):
        raise RenderError("no pixel data")
    check_extent(
        rows=peek(ds, ROWS, "US"),
        columns=peek(ds, COLUMNS, "US"),
        samples=peek(ds, SAMPLES, "US"),
        bits=peek(ds, ALLOCATED, "US"),
        frames=frames,
    )
    photometric = peek(ds, PHOTOMETRIC, "CS") or "MONOCHROME2"
    arr = _decode(ds, frame=frame if frames > 1 else None)
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        return _to_uint8_color(apply_color_lut(arr, ds))
    if arr.ndim == 3:
        # Colour: the decoders already turned YBR_FULL/_422/RCT/ICT into RGB.
        return _to_uint8_color(arr)
    values = _modality(arr, ds)
    if window is None:
        window = file_window(ds)
        if window is None:
            values = _voi_lut(values, ds)
    return _grey(values, window, photometric)


def _fast_frame(data, *, frame, window):
    """Render a frame of a plain CT/MR file without pydicom, or return None."""
    plain = plain_file(data)
    if plain is None:
        return None
    if frame < 0 or frame >= plain.frames:
        raise FrameOutOfRange(frame)
    check_extent(
        rows=plain.rows,
        columns=plain.columns,
        samples=1,
        bits=plain.dtype.itemsize * 8,
        frames=plain.frames,
    )
    return _plain_pixels(plain, plain.frame(frame), window)


def _decode(ds, *, frame):
    """Decode one frame; plain little-endian data is read straight with numpy."""
    fast = native_frame(ds, frame)
    if fast is not None:
        return fast
    from pydicom.pixels import pixel_array

    return pixel_array(ds, index=frame, as_rgb=True)


def _modality(arr, ds):
    """Apply the modality LUT or rescale slope/intercept; return float32."""
    if ds.get_item(MODALITY_LUT_SEQUENCE) is not None:
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    return _rescale(arr, peek(ds, SLOPE, "DS"), peek(ds, INTERCEPT, "DS"))


def _rescale(arr, slope, intercept):
    """Apply rescale slope and intercept (missing or non-finite: none); float32."""
    values = arr.astype(np.float32)
    if slope is not None and slope != 1 and np.isfinite(slope):
        values *= slope
    if intercept and np.isfinite(intercept):
        values += intercept
    return values


def file_window(ds):
    """Return the file's own first VOI window, or None."""
    return _valid_window(peek(ds, CENTER, "DS"), peek(ds, WIDTH, "DS"))


def _valid_window(center, width):
    if center is None or width is None:
        return None
    if not (np.isfinite(center) and np.isfinite(width)) or width < 1:
        return None
    return Window(center, width)


def _voi_lut(values, ds):
    """Apply the file's VOI LUT Sequence if it has a usable one."""
    if ds.get_item(VOI_LUT_SEQUENCE) is None:
        return values
    from pydicom.pixels import apply_voi_lut

    try:
        return np.asarray(apply_voi_lut(values, ds), dtype=np.float32)
    except Exception:  # a broken LUT falls back to min/max
        logger.debug("VOI LUT not applicable", exc_info=True)
        return values


def _grey(values, window, photometric):
    """Window values to uint8 (PS3.3 C.11.2.1.2.1, linear), min/max without one.

    MONOCHROME1 is inverted, so that high values show dark.
    """
    out = _minmax(values) if window is None else _linear(values, window)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


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


def placeholder_image(*, size=PLACEHOLDER_SIZE, fmt="png"):
    """Return a grey image that says the image cannot be displayed."""
    text = _("Image cannot be displayed")
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
