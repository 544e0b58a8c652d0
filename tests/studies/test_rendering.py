"""Frame rendering: every shipped pixel file, windowing, inversion, colour, cache."""

import io
import warnings

import numpy as np
import pydicom
import pytest
from PIL import Image

from studies import rendering
from tests.factories import (
    PIXEL_KEYWORDS,
    TEST_FILES,
    SeriesFactory,
    instance_create,
    shipped_file,
    study_file_bytes,
)


def pixel_files():
    """Every shipped file (.dcm or no extension) that carries pixel data."""
    found = []
    for path in sorted(TEST_FILES.iterdir()):
        if not path.is_file() or path.suffix not in (".dcm", ""):
            continue
        try:
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=False)
        except Exception:  # noqa: S112 - unreadable files carry no usable pixels
            continue
        if any(k in ds for k in PIXEL_KEYWORDS):
            found.append(path)
    return found


with warnings.catch_warnings():
    # Scanning the shipped files reads the broken ones too (PYDICOM_WARNINGS).
    warnings.filterwarnings("ignore", "Expected explicit VR", UserWarning)
    PIXEL_FILES = pixel_files()
# Shipped files that are broken on purpose or carry no real image.
KNOWN_UNDECODABLE = {
    "JPEG-lossy.dcm",  # 12-bit lossy JPEG, no decoder here
    "JPEG2000-embedded-sequence-delimiter.dcm",
    "MR_truncated.dcm",
    "badVR.dcm",
    "meta_missing_tsyntax.dcm",  # no Bits Allocated
    "nested_priv_SQ.dcm",  # no image pixel module
}
# What pydicom says, rightly, of the shipped files that break the standard.
PYDICOM_WARNINGS = {
    "badVR.dcm": "ignore:Invalid value for VR IS:UserWarning",
    "SC_rgb_jpeg.dcm": "ignore:Expected explicit VR, but found implicit VR:UserWarning",
}
PIXEL_PARAMS = [
    pytest.param(
        path,
        id=path.name,
        marks=[pytest.mark.filterwarnings(PYDICOM_WARNINGS[path.name])]
        if path.name in PYDICOM_WARNINGS
        else [],
    )
    for path in PIXEL_FILES
]


def _png(content):
    return Image.open(io.BytesIO(content))


def _header(path):
    ds = pydicom.dcmread(path, force=True)
    return ds.get("Rows"), ds.get("Columns"), int(ds.get("NumberOfFrames") or 1)


def test_it_finds_the_shipped_pixel_files():
    assert len(PIXEL_FILES) >= 60
    names = {p.name for p in PIXEL_FILES}
    assert {"CT_small.dcm", "MR_small.dcm", "examples_ybr_color.dcm"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize("path", PIXEL_PARAMS)
def test_it_renders_each_shipped_file_or_shows_the_placeholder(path):
    series = SeriesFactory()
    instance = instance_create(series=series, data=path.read_bytes())
    last = max(instance.number_of_frames, 1) - 1

    rendered = rendering.frame_render(instance=instance, frame=last)

    image = _png(rendered.content)
    assert rendered.content_type == "image/png"
    if rendered.placeholder:
        assert path.name in KNOWN_UNDECODABLE
        assert image.size == rendering.PLACEHOLDER_SIZE
    else:
        rows, columns, _frames = _header(path)
        assert image.size == (columns, rows)
        assert image.mode in ("L", "RGB")


@pytest.mark.django_db
@pytest.mark.filterwarnings(PYDICOM_WARNINGS["badVR.dcm"])
@pytest.mark.filterwarnings(PYDICOM_WARNINGS["SC_rgb_jpeg.dcm"])
def test_it_shows_the_placeholder_for_few_files():
    series = SeriesFactory()
    placeholders = []
    for path in PIXEL_FILES:
        instance = instance_create(series=series, data=path.read_bytes())
        if rendering.frame_render(instance=instance).placeholder:
            placeholders.append(path.name)

    assert set(placeholders) <= KNOWN_UNDECODABLE
    assert len(placeholders) <= 6


def test_the_placeholder_says_the_image_cannot_be_displayed():
    rendered = rendering.placeholder_image()

    image = _png(rendered.content).convert("L")
    pixels = np.asarray(image)
    assert rendered.placeholder
    # Light text on the dark background, in the middle of the image.
    middle = pixels[150:230, 40:470]
    assert (middle > 200).sum() > 200


def _ct_values():
    ds = pydicom.dcmread(shipped_file("CT_small.dcm"))
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_it_applies_rescale_and_the_given_window():
    data = shipped_file("CT_small.dcm").read_bytes()
    hu = _ct_values()

    pixels = rendering.frame_pixels(data, window=rendering.Window(40, 400))

    assert pixels.dtype == np.uint8
    assert (pixels[hu <= 40 - 200] == 0).all()
    assert (pixels[hu >= 40 + 200] == 255).all()
    inside = (hu > -150) & (hu < 230)
    expected = ((hu[inside] - (40 - 0.5)) / 399 + 0.5) * 255
    assert np.abs(pixels[inside].astype(float) - expected).max() <= 1.0


def test_it_uses_the_files_own_window_by_default_and_presets_by_name():
    data = shipped_file("MR_small.dcm").read_bytes()
    ds = pydicom.dcmread(shipped_file("MR_small.dcm"))
    own = rendering.Window(float(ds.WindowCenter), float(ds.WindowWidth))

    assert np.array_equal(
        rendering.frame_pixels(data), rendering.frame_pixels(data, window=own)
    )
    assert rendering.window_parse(preset="lung") == rendering.Window(-600, 1500)
    assert rendering.window_parse(center="40", width="80") == rendering.Window(40, 80)
    assert rendering.window_parse(center="x", width="80") is None


def test_it_falls_back_to_min_max_without_a_window():
    ds = pydicom.dcmread(shipped_file("MR_small.dcm"))
    del ds.WindowCenter
    del ds.WindowWidth

    pixels = rendering.frame_pixels(ds)

    assert pixels.min() == 0
    assert pixels.max() == 255


def test_it_inverts_monochrome1():
    ds2 = pydicom.dcmread(shipped_file("MR_small.dcm"))
    ds1 = pydicom.dcmread(shipped_file("MR_small.dcm"))
    ds1.PhotometricInterpretation = "MONOCHROME1"

    normal = rendering.frame_pixels(ds2)
    inverted = rendering.frame_pixels(ds1)

    assert np.array_equal(inverted, 255 - normal)


def test_it_converts_ybr_to_the_same_colours_as_rgb():
    rgb = rendering.frame_pixels(shipped_file("SC_rgb_dcmtk_+eb+cr.dcm").read_bytes())
    ybr = rendering.frame_pixels(
        shipped_file("SC_rgb_dcmtk_+eb+cy+n1.dcm").read_bytes()
    )

    assert rgb.shape == ybr.shape == (100, 100, 3)
    assert np.abs(rgb.astype(int) - ybr.astype(int)).mean() < 3
    red = rgb[5, 50]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_it_renders_each_frame_of_a_multi_frame_file():
    data = shipped_file("examples_ybr_color.dcm").read_bytes()

    first = rendering.frame_pixels(data, frame=0)
    later = rendering.frame_pixels(data, frame=20)

    assert first.shape == later.shape == (240, 320, 3)
    assert not np.array_equal(first, later)
    with pytest.raises(rendering.FrameOutOfRange):
        rendering.frame_pixels(data, frame=30)


def test_it_scales_16_bit_colour_to_8_bits():
    pixels = rendering.frame_pixels(shipped_file("SC_rgb_rle_16bit.dcm").read_bytes())

    assert pixels.dtype == np.uint8
    assert pixels.max() == 255


@pytest.mark.django_db
def test_a_second_view_reads_the_cache_without_pydicom(monkeypatch):
    series = SeriesFactory()
    data = study_file_bytes("CT_small.dcm", study=series.study, series=series)
    instance = instance_create(series=series, data=data)
    window = rendering.Window(-600, 1500)
    first = rendering.frame_render(instance=instance, window=window)

    def no_pydicom(*args, **kwargs):
        raise AssertionError("pydicom was called on a cached frame")

    monkeypatch.setattr(pydicom, "dcmread", no_pydicom)
    monkeypatch.setattr(rendering, "frame_pixels", no_pydicom)
    second = rendering.frame_render(instance=instance, window=window)

    assert second.content == first.content
    assert second.etag == first.etag
    assert not second.placeholder


@pytest.mark.django_db
def test_each_window_and_format_has_its_own_cached_image():
    series = SeriesFactory()
    instance = instance_create(
        series=series, data=shipped_file("CT_small.dcm").read_bytes()
    )

    soft = rendering.frame_render(instance=instance, window=rendering.Window(40, 400))
    lung = rendering.frame_render(
        instance=instance, window=rendering.Window(-600, 1500)
    )
    webp = rendering.frame_render(instance=instance, fmt="webp")

    assert soft.content != lung.content
    assert soft.etag != lung.etag
    assert webp.content_type == "image/webp"
    assert Image.open(io.BytesIO(webp.content)).format == "WEBP"


@pytest.mark.django_db
def test_a_thumbnail_is_small():
    series = SeriesFactory()
    instance = instance_create(
        series=series, data=shipped_file("JPEG2000.dcm").read_bytes()
    )

    rendered = rendering.thumbnail_render(instance=instance)

    image = _png(rendered.content)
    assert max(image.size) == rendering.THUMBNAIL_SIZE
    assert not rendered.placeholder


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm"]
)
@pytest.mark.parametrize("window", [None, rendering.Window(40, 400)])
def test_the_fast_path_for_plain_files_matches_pydicom(name, window):
    data = shipped_file(name).read_bytes()

    fast = rendering._fast_frame(data, frame=0, window=window)
    slow = rendering.frame_pixels(rendering.dataset_read(data), window=window)

    assert fast is not None
    assert np.array_equal(fast, slow)


def test_the_fast_path_leaves_other_files_to_pydicom():
    # Compressed, colour and big-endian: each needs pydicom.
    for name in ("JPEG2000.dcm", "SC_rgb_small_odd.dcm", "MR_small_bigendian.dcm"):
        data = shipped_file(name).read_bytes()
        assert rendering._fast_frame(data, frame=0, window=None) is None, name
