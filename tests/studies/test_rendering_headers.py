"""The cold render's fixed cost paid once per file, and small frames kept in memory.

A plain CT/MR file's header is parsed once per version of the file (path, mtime,
size, inode) and every frame after that reads only its own bytes; a small frame
(at most SMALL_IMAGE_PIXELS) renders faster than the disk cache writes a file,
so its image is kept in memory and never written to disk.
"""

import io
import os

import numpy as np
import pydicom
import pytest
from PIL import Image

from studies import rendering
from tests.factories import SeriesFactory, instance_create, study_file_bytes

pytestmark = pytest.mark.django_db


def decoded(rendered):
    return np.asarray(Image.open(io.BytesIO(rendered.content)))


def three_frames(series):
    """CT_small as a 3-frame file whose frames differ (plain, little-endian)."""
    data = study_file_bytes("CT_small.dcm", study=series.study, series=series)
    ds = pydicom.dcmread(io.BytesIO(data))
    first = ds.pixel_array
    frames = [first, np.flipud(first).copy(), (first // 2).astype(first.dtype)]
    ds.NumberOfFrames = 3
    ds.PixelData = b"".join(frame.tobytes() for frame in frames)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


@pytest.fixture
def parses(monkeypatch):
    calls = []
    real = rendering.plain_header

    def counting(data, **kwargs):
        calls.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(rendering, "plain_header", counting)
    return calls


def test_every_frame_of_a_file_shares_one_parsed_header(parses):
    series = SeriesFactory()
    data = three_frames(series)
    instance = instance_create(series=series, data=data)
    assert instance.frame_count == 3

    images = [rendering.frame_render(instance=instance, frame=i) for i in range(3)]

    assert len(parses) == 1
    # Each frame shows its own pixels, as pydicom's generic path renders them.
    full = rendering.dataset_read(data)
    for index, image in enumerate(images):
        assert not image.placeholder
        expected = rendering.frame_pixels(full, frame=index)
        assert np.array_equal(decoded(image), expected)
    assert not np.array_equal(decoded(images[0]), decoded(images[1]))


def test_a_changed_file_is_parsed_again(parses):
    series = SeriesFactory()
    instance = instance_create(series=series, data=three_frames(series))
    rendering.frame_render(instance=instance, frame=0)
    stat = os.stat(instance.file.path)
    os.utime(instance.file.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    rendering.frame_render(instance=instance, frame=1)

    assert len(parses) == 2


def test_a_frame_the_header_lacks_is_out_of_range():
    series = SeriesFactory()
    instance = instance_create(series=series, data=three_frames(series))
    instance.number_of_frames = 5  # the database says more than the file holds

    with pytest.raises(rendering.FrameOutOfRange):
        rendering.frame_render(instance=instance, frame=4)


def test_a_small_frame_is_kept_in_memory_and_never_written(monkeypatch, settings):
    series = SeriesFactory()
    data = study_file_bytes("MR_small.dcm", study=series.study, series=series)
    instance = instance_create(series=series, data=data)

    first = rendering.frame_render(instance=instance)

    written = [p for p in _files(settings.RENDER_CACHE_DIR)]
    assert written == []

    def no_render(*args, **kwargs):
        raise AssertionError("a cached small frame was rendered again")

    monkeypatch.setattr(rendering, "_plain_frame_pixels", no_render)
    monkeypatch.setattr(rendering, "frame_pixels", no_render)
    second = rendering.frame_render(instance=instance)

    assert second.content == first.content and second.etag == first.etag
    assert decoded(second).shape == (64, 64)


def test_a_larger_frame_goes_to_the_disk_cache(settings):
    series = SeriesFactory()
    data = study_file_bytes("CT_small.dcm", study=series.study, series=series)
    instance = instance_create(series=series, data=data)

    rendering.frame_render(instance=instance)

    assert len(list(_files(settings.RENDER_CACHE_DIR))) == 1


def test_the_memory_cache_keeps_to_its_bound():
    cache = rendering._MemoryCache(100)
    for index in range(10):
        cache.put(index, bytes(30))

    assert cache.size <= 100
    assert cache.get(9) is not None and cache.get(0) is None


def _files(folder):
    for root, _dirs, names in os.walk(folder):
        for name in names:
            yield os.path.join(root, name)
