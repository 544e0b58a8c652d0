#!/usr/bin/env python
"""Receive rate over C-STORE: dcmtk's storescu to PACSshare's receiver, and to Orthanc.

In one run, on the same files (a fixed set of pydicom test files, compressed
ones included, copied with new UIDs into studies of 50 instances; --count in
all), storescu sends every file on one association, in its own transfer
syntax, first to Orthanc (Debian package, a temporary storage of its own),
then to `manage.py dicom_listen` (a process of its own, importing into the
database "bench_dicom" on the PostgreSQL server of DATABASE_URL, or a SQLite
file under var/bench/ without it; dev data is never touched). Each side's time
runs from storescu's start to its exit, and the instances each side holds
afterwards are counted. It prints both rates and PACSshare/Orthanc (goal: at
least 0.5).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pacsshare \
        .venv/bin/python bench/dicom_receive.py [--count 500]
"""

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from own_database import use_own_database  # noqa: E402  (bench/ is on sys.path)

BENCH_DB = "bench_dicom"
SAMPLES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
]
STUDY_SIZE = 50


def write_files(folder, count):
    """Copy the samples with new UIDs: studies of STUDY_SIZE instances."""
    import pydicom
    from pydicom.uid import generate_uid

    sources = [
        pydicom.dcmread(Path(pydicom.data.DATA_ROOT, "test_files", name))
        for name in SAMPLES
    ]
    files = []
    for number in range(count):
        if number % STUDY_SIZE == 0:
            study, patient = generate_uid(), f"BENCH-{number // STUDY_SIZE}"
            series = [generate_uid() for _ in sources]  # one per kind
        kind = number % len(sources)
        ds = sources[kind]
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series[kind]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = patient
        ds.InstanceNumber = number + 1
        path = folder / f"{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def send(port, files, config, aet="STORESCU"):
    """Send every file on one association; return the seconds storescu took."""
    started = time.monotonic()
    result = subprocess.run(
        ["storescu", "-nh", "-aet", aet, "-aec", "PACSSHARE"]
        + ["--config-file", str(config), "AsTheyAre", "127.0.0.1", str(port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-3000:])
    return elapsed


def wait_for_echo(port, process, seconds=60):
    deadline = time.monotonic() + seconds
    while subprocess.run(
        ["echoscu", "-q", "-aet", "STORESCU", "127.0.0.1", str(port)],
        stderr=subprocess.DEVNULL,
    ).returncode:
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit("dicom receive: the receiver did not start")
        time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    # dcmtk (storescu, and Orthanc, built on it) keeps Nagle's algorithm on
    # unless told: each file would wait ~40 ms for a delayed ACK.
    os.environ.setdefault("TCP_NODELAY", "1")
    use_own_database(BENCH_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pacsshare.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from recipients.models import Department
    from studies.models import DicomCaller, IncomingAssociation, Instance
    from tests.dicom_peers import missing_dicom_peers, running_orthanc, storescu_config
    from tests.fixtures_services import free_port

    missing = missing_dicom_peers()
    if missing:
        sys.exit(f"dicom receive: {missing}")
    call_command("migrate", verbosity=0)
    run = time.strftime("%Y%m%d%H%M%S")
    department = Department.objects.create(name=f"Bench {run}", code=f"bench-{run}")
    DicomCaller.objects.filter(ae_title="STORESCU").delete()
    DicomCaller.objects.create(department=department, ae_title="STORESCU")

    with tempfile.TemporaryDirectory(prefix="bench-dicom-") as tmp:
        tmp = Path(tmp)
        (tmp / "files").mkdir()
        files = write_files(tmp / "files", args.count)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        config = storescu_config(files, tmp / "storescu.cfg")
        print(
            f"dicom receive: {len(files)} instances, {megabytes:.1f} MB, "
            f"{len(SAMPLES)} kinds ({', '.join(SAMPLES)})",
            file=sys.stderr,
        )

        with running_orthanc(tmp / "orthanc") as orthanc:
            orthanc_seconds = send(orthanc.dicom_port, files, config)
            orthanc_count = orthanc.get("/statistics")["CountInstances"]

        port = free_port()
        # As in production: DEBUG off (no query log kept per statement).
        env = dict(
            os.environ,
            MEDIA_ROOT=str(tmp / "media"),
            LOG_LEVEL="WARNING",
            DEBUG="0",
            SECRET_KEY=secrets.token_urlsafe(32),
        )
        receiver = subprocess.Popen(
            [sys.executable, "manage.py", "dicom_listen", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for_echo(port, receiver)
            ours_seconds = send(port, files, config)
        finally:
            receiver.terminate()
            receiver.wait(60)
        ours_count = Instance.objects.filter(
            series__study__department=department
        ).count()
        record = IncomingAssociation.objects.filter(department=department).latest("id")

    ours = ours_count / ours_seconds
    theirs = orthanc_count / orthanc_seconds
    print(
        f"dicom receive: Orthanc {theirs:.1f} instances/s "
        f"({orthanc_count}/{len(files)} stored in {orthanc_seconds:.2f} s)"
    )
    print(
        f"dicom receive: PACSshare {ours:.1f} instances/s "
        f"({ours_count}/{len(files)} stored in {ours_seconds:.2f} s; "
        f"association: stored {record.stored}, already present "
        f"{record.already_present}, refused {record.refused})"
    )
    print(f"dicom receive: PACSshare/Orthanc ratio {ours / theirs:.2f} (goal >= 0.5)")
    return 0 if ours_count == len(files) == orthanc_count else 1


if __name__ == "__main__":
    sys.exit(main())
