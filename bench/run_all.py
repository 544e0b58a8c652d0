#!/usr/bin/env python
"""Run every benchmark under bench/ against PostgreSQL and Redis; print one table.

`make bench` runs this. It checks that PostgreSQL and Redis answer (DATABASE_URL
and REDIS_URL name them; unset, they default to the local services), loads the
hospital-scale database once (bench/data.py: 1,000,000 directory users, 100,000
studies, 10,000 buckets, with COPY; reused on later runs), then runs, each in
its own process: the directory search (on the same 1,000,000 users), frame
rendering, notifications through a real worker and SMTP server, the pages
under load (gunicorn + wrk: the overview, the wizard, the directory search,
Status Forwarding, the recipient's pages), a whole-study WADO-RS retrieve
against Orthanc, C-STORE receive (storescu to PACSshare and to Orthanc) and share
creation. Each figure is printed with the baseline measured in the same run, the
ratio, and whether its goal is met; the last row is the run's own wall time
(goal: under 20 minutes).
Every benchmark's own output goes to stderr as it runs.

    .venv/bin/python bench/run_all.py [--quick]
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pacsshare"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DATABASE = "bench_pages"
WALL_TIME_GOAL = 20 * 60  # seconds: `make bench` finishes within 20 minutes


def check_services():
    """Set the service URLs if unset; exit with a clear message if one is down."""
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    database, redis = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    if not urlparse(database).scheme.startswith("postgres"):
        sys.exit(f"bench: DATABASE_URL must name a PostgreSQL server, not {database}")
    import psycopg2

    try:
        psycopg2.connect(
            urlparse(database)._replace(path="/postgres").geturl(), connect_timeout=5
        ).close()
    except psycopg2.OperationalError as error:
        sys.exit(f"bench: PostgreSQL at {database} does not answer: {error}")
    parsed = urlparse(redis)
    try:
        with socket.create_connection(
            (parsed.hostname, parsed.port or 6379), 5
        ) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(64).startswith(b"+PONG"):
                raise OSError("no PONG")
    except OSError as error:
        sys.exit(f"bench: Redis at {redis} does not answer: {error}")
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        sys.exit("bench: wrk is missing (apt-get install -y wrk)")
    print(f"bench: PostgreSQL {database}, Redis {redis}", file=sys.stderr)


def run(name, args, *, json_out=None):
    """Run one benchmark; stream its stderr, capture its stdout; return both."""
    command = [PYTHON, *args]
    if json_out is not None:
        command += ["--json", json_out]
    print(f"\n== {name}: {' '.join(args)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    process = subprocess.run(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=os.environ
    )
    elapsed = time.monotonic() - started
    sys.stderr.write(process.stdout)
    print(
        f"== {name}: exit {process.returncode} after {elapsed:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return process.returncode, process.stdout, elapsed


def row(
    bench, measure, value, unit, baseline="", baseline_value=None, goal="", met=None
):
    ratio = None
    if value is not None and baseline_value:
        ratio = value / baseline_value
    return {
        "bench": bench,
        "measure": measure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "goal": goal,
        "met": met,
    }


def number(pattern, text, cast=float):
    match = re.search(pattern, text, re.MULTILINE)
    return cast(match.group(1).replace(",", "")) if match else None


def directory_rows(out):
    """Rows from bench/directory_search.py's summary lines."""
    rows = []
    figures = {}
    for label, key in (("service", "service"), ("baseline", "baseline ILIKE")):
        line = re.search(rf"^{re.escape(key)}.*$", out, re.MULTILINE)
        if line:
            figures[label] = {
                p: number(rf"{p}\s+([\d.]+) ms", line.group(0))
                for p in ("p50", "p95", "max")
            }
    service, baseline = figures.get("service"), figures.get("baseline")
    if not service or not baseline:
        return [row("directory", "quick search (output not understood)", None, "")]
    rows.append(
        row(
            "directory",
            "quick search p50",
            service["p50"],
            "ms",
            "ILIKE scan",
            baseline["p50"],
        )
    )
    ratio = service["p95"] / baseline["p95"] if baseline["p95"] else None
    rows.append(
        row(
            "directory",
            "quick search p95",
            service["p95"],
            "ms",
            "ILIKE scan",
            baseline["p95"],
            "<= 0.05",
            ratio is not None and ratio <= 0.05,
        )
    )
    return rows


def render_rows(out):
    """Rows from bench/render.py's table (CPU ms; wall ms in brackets)."""
    rows = []
    cell = r"\s+([\d.]+)\s+\(\s*[\d.]+\)"
    for name in ("CT_small.dcm", "MR_small.dcm"):
        match = re.search(rf"^{re.escape(name)}{cell}{cell}{cell}", out, re.MULTILINE)
        if not match:
            rows.append(row("render", f"{name} (output not understood)", None, ""))
            continue
        bare, cold, cached = (float(match.group(i)) for i in (1, 2, 3))
        rows.append(
            row(
                "render",
                f"{name} cold frame",
                cold,
                "ms CPU",
                "bare PNG encode",
                bare,
                "<= 2.0",
                cold / bare <= 2.0,
            )
        )
        rows.append(
            row(
                "render",
                f"{name} cached frame",
                cached,
                "ms CPU",
                "bare PNG encode",
                bare,
                "<= 0.2",
                cached / bare <= 0.2,
            )
        )
    return rows


def notification_rows(out):
    noop = number(r"no-op task ([\d.]+) tasks/s", out)
    clean = number(r"clean run .* = ([\d.]+) mails/s", out)
    faulted = number(r"fault run .* = ([\d.]+) mails/s", out)
    lost = number(r"lost (\d+),", out, int)
    duplicated = number(r"duplicated (\d+)", out, int)
    if clean is None or noop is None or lost is None:
        return [row("notifications", "mails (output not understood)", None, "")]
    return [
        row("notifications", "no-op task through the worker", noop, "tasks/s"),
        row(
            "notifications",
            "share mails, no fault",
            clean,
            "mails/s",
            "no-op task",
            noop,
            ">= 0.25",
            clean / noop >= 0.25,
        ),
        row(
            "notifications",
            "share mails, duplicated tasks + 421",
            faulted,
            "mails/s",
            "no-op task",
            noop,
        ),
        row(
            "notifications",
            "mails lost + duplicated",
            lost + duplicated,
            "mails",
            goal="0",
            met=lost == 0 and duplicated == 0,
        ),
    ]


def dicomweb_rows(out):
    """Rows from bench/dicomweb_retrieve.py: PACSshare's and Orthanc's rates."""
    ours = number(r"^pacsshare: whole-study retrieve .* = ([\d.]+) instances/s", out)
    theirs = number(r"^orthanc: whole-study retrieve .* = ([\d.]+) instances/s", out)
    if ours is None or theirs is None:
        return [row("dicomweb", "WADO-RS study (output not understood)", None, "")]
    return [
        row(
            "dicomweb",
            "WADO-RS whole-study retrieve",
            ours,
            "instances/s",
            "Orthanc DICOMweb",
            theirs,
            ">= 0.5",
            ours / theirs >= 0.5,
        )
    ]


def dicom_receive_rows(out):
    """Rows from bench/dicom_receive.py (storescu to PACSshare and to Orthanc)."""
    ours = number(r"PACSshare ([\d.]+) instances/s", out)
    theirs = number(r"Orthanc ([\d.]+) instances/s", out)
    if ours is None or theirs is None:
        return [row("dicom receive", "C-STORE (output not understood)", None, "")]
    return [
        row(
            "dicom receive",
            "C-STORE from storescu",
            ours,
            "instances/s",
            "Orthanc",
            theirs,
            ">= 0.5",
            ours / theirs >= 0.5,
        )
    ]


def json_rows(path):
    import json

    try:
        return json.loads(Path(path).read_text())["rows"]
    except (OSError, ValueError, KeyError):
        return None


def json_profiles(path):
    import json

    try:
        return json.loads(Path(path).read_text()).get("profiles") or {}
    except (OSError, ValueError):
        return {}


def fmt(value, unit=""):
    if value is None:
        return "—"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"


def print_table(rows):
    header = (
        "benchmark",
        "figure",
        "value",
        "baseline (same run)",
        "ratio",
        "goal",
        "met",
    )
    lines = []
    for r in rows:
        base = ""
        if r["baseline"] or r["baseline_value"] is not None:
            base = f"{fmt(r['baseline_value'])} {r['baseline']}".strip()
        lines.append(
            (
                r["bench"],
                r["measure"],
                f"{fmt(r['value'])} {r['unit']}".strip(),
                base,
                "" if r["ratio"] is None else f"{r['ratio']:.2f}",
                r["goal"],
                {True: "yes", False: "NO", None: ""}[r["met"]],
            )
        )
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(7)]
    rule = "  ".join("-" * w for w in widths)
    print(rule)
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    print(rule)
    for line in lines:
        cells = []
        for i, (cell, width) in enumerate(zip(line, widths, strict=True)):
            cells.append(cell.rjust(width) if i in (2, 4) else cell.ljust(width))
        print("  ".join(cells).rstrip())
    print(rule)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small data and short runs, to check the machinery (not the figures)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    check_services()
    sizes = ["--users", "1000000", "--studies", "100000", "--buckets", "10000"]
    seconds, repeat, mails = "10", "3", "1000"
    database = DATABASE
    if args.quick:
        sizes = ["--users", "20000", "--studies", "5000", "--buckets", "1000"]
        seconds, repeat, mails = "2", "1", "100"
        database = "bench_pages_quick"
    users = sizes[1]
    rows, failures = [], []
    out_dir = Path(tempfile.mkdtemp(prefix="pacsshare-bench-"))

    code, out, elapsed = run(
        "data",
        ["bench/data.py", "--database", database, *sizes],
        json_out=str(out_dir / "data.json"),
    )
    if code != 0:
        sys.exit("bench: loading the data failed; see above.")
    rows.append(row("data", f"hospital loaded or reused ({database})", elapsed, "s"))

    steps = [
        (
            "directory search",
            ["bench/directory_search.py", "--database", database, "--users", users],
            None,
            directory_rows,
        ),
        ("frame rendering", ["bench/render.py", "--repeat", "300"], None, render_rows),
        (
            "notifications",
            ["bench/notifications.py", "--count", mails],
            None,
            notification_rows,
        ),
        (
            "pages",
            [
                "bench/pages.py",
                "--database",
                database,
                "--seconds",
                seconds,
                "--profile-missed",
            ],
            "pages.json",
            None,
        ),
        (
            "dicomweb retrieve",
            ["bench/dicomweb_retrieve.py", "--repeat", "3" if args.quick else "5"],
            None,
            dicomweb_rows,
        ),
        (
            "dicom receive",
            ["bench/dicom_receive.py", "--count", "100" if args.quick else "500"],
            None,
            dicom_receive_rows,
        ),
        (
            "share create",
            ["bench/share_create.py", "--database", database, "--repeat", repeat],
            "share.json",
            None,
        ),
    ]
    for name, command, json_name, parse in steps:
        json_out = str(out_dir / json_name) if json_name else None
        code, out, elapsed = run(name, command, json_out=json_out)
        found = parse(out) if parse else json_rows(json_out)
        if code != 0 and not found:
            failures.append(name)
            rows.append(row(name, f"FAILED (exit {code}); see its output", None, ""))
            continue
        if code != 0 and parse is None:
            failures.append(name)
        rows.extend(found or [])

    total = time.monotonic() - started
    rows.append(
        row(
            "bench",
            "wall time of the whole run",
            total / 60,
            "min",
            goal=f"< {WALL_TIME_GOAL // 60}",
            met=None if args.quick else total < WALL_TIME_GOAL,
        )
    )
    print()
    print(
        f"PACSshare benchmarks — {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{os.cpu_count()} CPUs, database {database}, wall time {total / 60:.1f} min"
    )
    print_table(rows)
    missed = [r["measure"] for r in rows if r["met"] is False]
    print(
        f"goals met: {sum(1 for r in rows if r['met'])}/"
        f"{sum(1 for r in rows if r['met'] is not None)}"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )
    if failures:
        print(f"benchmarks that failed: {', '.join(failures)}")
    profiles = json_profiles(out_dir / "pages.json")
    for name, lines in profiles.items():
        print(f"\nwhere {name} spends its time under load (py-spy, both workers):")
        print("\n".join(f"  {line}" for line in lines))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
