"""A frame beyond the size limits renders as the placeholder, without allocating it."""

import tracemalloc

import pytest

from studies import rendering
from tests.factories import SeriesFactory, instance_create

from .hostile_dicom import jpeg_bomb, native_bomb, rle_bomb

PEAK_BOUND = 32 * 1024 * 1024


@pytest.mark.django_db
@pytest.mark.parametrize("build", [native_bomb, rle_bomb, jpeg_bomb])
def test_a_65535_square_frame_gives_the_placeholder_in_bounded_memory(build, tmp_path):
    data = build(tmp_path).read_bytes()
    instance = instance_create(series=SeriesFactory(), data=data)

    tracemalloc.start()
    try:
        rendered = rendering.frame_render(instance=instance, frame=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert rendered.placeholder
    assert peak < PEAK_BOUND, f"peak {peak / 2**20:.0f} MB"


def test_the_limit_is_a_setting(settings, tmp_path):
    from .hostile_dicom import TEST_FILES

    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    assert rendering.frame_pixels(data).shape == (128, 128)
    settings.DICOM_MAX_FRAME_PIXELS = 128 * 128 - 1

    with pytest.raises(rendering.RenderError):
        rendering.frame_pixels(data)
