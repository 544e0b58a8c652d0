#!/usr/bin/env python
"""Benchmark frame rendering: cold (no cache) and cached, against a bare PNG encode.

For CT_small and MR_small (shipped with pydicom) prints the median time to
render one frame through studies.rendering.frame_render with an empty cache
("cold": read the DICOM file, decode, window, encode, write the cache) and with
the cache filled ("cached": read the bytes back), beside the time Pillow alone
takes to encode the same 8-bit array as PNG with its default settings, and the
ratios. Goals: cold <= 2x the bare encode, cached <= 0.2x.

    .venv/bin/python bench/render.py [--repeat 300]
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _File:
    def __init__(self, path):
        self.path = path

    def open(self, mode="rb"):
        return open(self.path, mode)  # noqa: SIM115 - closed by the caller's with


class _Instance:
    """Just what frame_render reads from an Instance (no database needed)."""

    def __init__(self, path, uid):
        self.pk = uid
        self.sop_instance_uid = uid
        self.frame_count = 1
        self.file = _File(path)


def _median_ms(fn, repeat):
    """Median (CPU time of this thread, wall time) of one call, in ms.

    CPU time is the figure compared: the benchmark often runs beside other
    work on a shared machine, which inflates and scatters wall time.
    """
    fn()  # warm up imports and first-call paths
    cpu, wall = [], []
    for n in range(repeat):
        start_cpu, start_wall = time.thread_time_ns(), time.perf_counter_ns()
        fn(n)
        cpu.append(time.thread_time_ns() - start_cpu)
        wall.append(time.perf_counter_ns() - start_wall)
    return statistics.median(cpu) / 1e6, statistics.median(wall) / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()

    cache_dir = tempfile.mkdtemp(prefix="bench-render-")
    os.environ["RENDER_CACHE_DIR"] = cache_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pacsshare.settings")
    import django

    django.setup()
    import pydicom.data
    from PIL import Image

    from studies import rendering

    print(
        f"frame rendering, median of {args.repeat} runs, ms of CPU time "
        f"(wall time in brackets); cache in {cache_dir}"
    )
    print(
        f"{'file':<14}{'bare PNG':>17}{'cold':>17}{'cached':>17}"
        f"{'cold/bare':>11}{'cached/bare':>13}  goals: <=2.0, <=0.2"
    )
    ok = True
    for name in ("CT_small.dcm", "MR_small.dcm"):
        path = Path(pydicom.data.DATA_ROOT, "test_files", name)
        pixels = rendering.frame_pixels(path.read_bytes())

        def bare(_n=0, pixels=pixels):
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, "PNG")
            return buffer.getvalue()

        def cold(n=-1, path=path, name=name):
            # A new SOP instance UID each run: nothing of it is cached yet.
            instance = _Instance(path, f"1.2.3.{name}.{n}.{time.perf_counter_ns()}")
            return rendering.frame_render(instance=instance)

        cached_instance = _Instance(path, f"1.2.3.{name}.cached")

        def cached(_n=0, instance=cached_instance):
            return rendering.frame_render(instance=instance)

        assert not cached().placeholder
        t_bare = _median_ms(bare, args.repeat)
        t_cold = _median_ms(cold, args.repeat)
        t_cached = _median_ms(cached, args.repeat)
        r_cold, r_cached = t_cold[0] / t_bare[0], t_cached[0] / t_bare[0]
        ok = ok and r_cold <= 2.0 and r_cached <= 0.2
        cells = "".join(f"{c:>8.3f} ({w:>6.3f})" for c, w in (t_bare, t_cold, t_cached))
        print(f"{name:<14}{cells}{r_cold:>11.2f}{r_cached:>13.3f}")
    print("goals met" if ok else "goals NOT met")


if __name__ == "__main__":
    main()
