"""Sample gunicorn's workers with py-spy while a page is under load; summarize.

py-spy is optional (`.venv/bin/pip install py-spy`); without it nothing is
profiled. Samples are taken with --idle, so time spent waiting for PostgreSQL
counts, and only samples inside a request (gunicorn's handle_request) are kept.
"""

import collections
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def available():
    return PY_SPY.exists()


def start(pid, seconds, output):
    """Start sampling the process `pid` and its children for `seconds`."""
    return subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--idle",
            "--nonblocking",
            "--rate",
            "250",
            "--duration",
            str(seconds),
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _short(frame):
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", "/work/main/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match.group('function')} ({path})"


PROJECT = ("studies/", "sharing/", "recipients/", "pacsshare/", "bench/")


def _is_project(frame):
    # py-spy names files relative to sys.path: "studies/views.py", "django/...".
    match = FRAME.match(frame.strip())
    return bool(match) and match.group("file").startswith(PROJECT)


def summarize(output, *, top=8):
    """Return lines: where the request time goes (own time and inclusive time)."""
    own, inclusive, total = collections.Counter(), collections.Counter(), 0
    buckets = collections.Counter()
    path = Path(output)
    if not path.exists():
        return ["(no profile: py-spy wrote nothing)"]
    # py-spy writes frames' names as it finds them: not always valid UTF-8.
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "handle_request" not in stack:
            continue
        count = int(count)
        frames = stack.split(";")
        total += count
        own[_short(frames[-1])] += count
        for frame in set(frames):
            if _is_project(frame):
                inclusive[_short(frame)] += count
        text = stack
        if "backends/utils.py" in text or "psycopg2" in text:
            buckets["database (cursor.execute and fetch)"] += count
        elif "template/" in text:
            buckets["template rendering"] += count
        elif "forms/" in text:
            buckets["forms (validation, widgets)"] += count
        else:
            buckets["other Python"] += count
    if not total:
        return ["(no samples inside requests)"]
    lines = [f"{total} samples inside requests; by kind:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in buckets.most_common()]
    lines.append("own time (leaf frames):")
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines.append("inclusive time in project code:")
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return lines
