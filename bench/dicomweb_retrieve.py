#!/usr/bin/env python
"""Time a whole-study WADO-RS retrieve from PACSshare and from Orthanc, same files.

One CT study of ``--instances`` slices (pydicom's CT_small.dcm, each with new
UIDs, about 39 KB a file) is written to a temporary folder, imported into
PACSshare (its own PostgreSQL database, ``bench_dicomweb``, made anew; files
under a temporary MEDIA_ROOT) and shared with a recipient, and uploaded to
Orthanc (Debian package with its DICOMweb plugin, on free loopback ports)
through its REST API. gunicorn (2 sync workers, production settings) serves
PACSshare; the recipient's session cookie goes as a header. Each server then
answers ``GET {root}/studies/{uid}`` (``multipart/related;
type="application/dicom"``), read to the end, ``--repeat`` times in turn after
one warm-up each; the median rate of each and the ratio PACSshare / Orthanc are
printed (goal: at least 0.5). Each body is checked to hold every instance.

    .venv/bin/python bench/dicomweb_retrieve.py [--instances 200] [--repeat 5]
"""

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DATABASE = "bench_dicomweb"
GOAL = 0.5
ACCEPT = 'multipart/related; type="application/dicom"'


def database_url(name):
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x")
    return urlparse(base)._replace(path=f"/{name}").geturl()


def recreate_database(name):
    import psycopg2

    admin = urlparse(database_url("postgres")).geturl()
    connection = psycopg2.connect(admin)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def write_study(folder, count):
    """Write ``count`` CT slices of one new study; return its Study Instance UID."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    for number in range(1, count + 1):
        ds = source.copy()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        ds.PatientID, ds.PatientName = "BENCH-DICOMWEB", "Bench^Dicomweb"
        ds.ImagePositionPatient = ["0", "0", f"{number * 1.0:.1f}"]
        ds.save_as(folder / f"{number:05d}.dcm", enforce_file_format=True)
    return study_uid


def load_pacsshare(folder):
    """Import the folder, share its study with a recipient; return (bucket, session)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", interactive=False, verbosity=0)
    from recipients.models import Department, User
    from sharing.models import Bucket, Share
    from studies.dicom_import import import_dicom_paths
    from studies.models import Study

    department = Department.objects.create(name="Bench radiology", code="bench")
    summary = import_dicom_paths(paths=[folder], department=department)
    study = Study.objects.get()
    sender = User.objects.create_user(username="bench-sender", password="x" * 20)
    recipient = User.objects.create_user(username="bench-reader", password="x" * 20)
    share = Share.objects.create(
        sender=sender,
        source_department=department,
        access="read",
        reason="Benchmark",
        language="en",
        patient_agreed_at=django.utils.timezone.now(),
    )
    share.studies.set([study])
    bucket = Bucket.objects.create(
        share=share, recipient_user=recipient, require_otp=False, send_mail=False
    )
    client = Client()
    client.force_login(recipient)
    print(f"pacsshare: imported {len(summary.outcomes)} files", file=sys.stderr)
    return bucket, client.cookies["sessionid"].value


def retrieve(url, headers):
    """GET a whole study; return (seconds, bytes, parts)."""
    request = urllib.request.Request(  # noqa: S310 (loopback servers of the bench)
        url, headers={"Accept": ACCEPT, **headers}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
        boundary = response.headers["Content-Type"].split("boundary=")[1]
        boundary = boundary.split(";")[0].strip('"').encode()
        body = io.BytesIO()
        while chunk := response.read(1 << 20):
            body.write(chunk)
    elapsed = time.perf_counter() - started
    data = body.getvalue()
    return elapsed, len(data), data.count(b"--" + boundary) - 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from tests.dicom_peers import missing_dicom_peers, running_orthanc
    from tests.fixtures_services import free_port

    missing = missing_dicom_peers()
    if missing:
        sys.exit(f"dicomweb: {missing}")
    import pages  # noqa: E402  (bench/pages.py: production env, gunicorn)

    with tempfile.TemporaryDirectory(prefix="pacsshare-dicomweb-") as tmp:
        tmp = Path(tmp)
        files = tmp / "files"
        files.mkdir()
        study_uid = write_study(files, args.instances)
        total = sum(p.stat().st_size for p in files.iterdir())
        print(
            f"study: {args.instances} instances, {total / 1e6:.1f} MB", file=sys.stderr
        )

        recreate_database(DATABASE)
        os.environ["DATABASE_URL"] = database_url(DATABASE)
        os.environ["MEDIA_ROOT"] = str(tmp / "media")
        port = free_port()
        os.environ.update(pages.production_env(port))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pacsshare.settings")
        # The session made here must hold in the production server too.
        os.environ.setdefault("SECRET_KEY", "bench-only-" + "5e1f0a9d7c3b2e4f" * 3)
        bucket, session = load_pacsshare(files)

        with running_orthanc(tmp / "orthanc") as orthanc:
            for path in sorted(files.iterdir()):
                orthanc.upload(path)
            with pages.gunicorn(dict(os.environ), port):
                targets = {
                    "pacsshare": (
                        f"http://127.0.0.1:{port}/received/{bucket.pk}/dicom-web"
                        f"/studies/{study_uid}",
                        {"Cookie": f"sessionid={session}"},
                    ),
                    "orthanc": (f"{orthanc.dicomweb}/studies/{study_uid}", {}),
                }
                results = {name: [] for name in targets}
                for name, (url, headers) in targets.items():
                    _, _, parts = retrieve(url, headers)  # warm-up
                    if parts != args.instances:
                        sys.exit(f"{name}: {parts} parts, not {args.instances}")
                for _ in range(args.repeat):
                    for name, (url, headers) in targets.items():
                        results[name].append(retrieve(url, headers))

    rates = {}
    for name, runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        megabytes = statistics.median(r[1] for r in runs) / 1e6
        rates[name] = args.instances / seconds
        print(
            f"{name}: whole-study retrieve {seconds * 1000:.0f} ms = "
            f"{rates[name]:.1f} instances/s ({megabytes / seconds:.1f} MB/s), "
            f"median of {len(runs)} runs"
        )
    ratio = rates["pacsshare"] / rates["orthanc"]
    print(f"ratio pacsshare/orthanc: {ratio:.2f} (goal >= {GOAL})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as error:
        sys.exit(f"dicomweb: {error}")
