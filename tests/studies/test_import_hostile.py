"""Hostile DICOM is refused with a summary line, in bounded memory, never a crash."""

import os
import shutil
import subprocess
import sys
import tracemalloc
from io import StringIO
from pathlib import Path

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from pydicom import dcmread
from pydicom.uid import generate_uid

from studies.dicom_import import import_dicom_paths
from studies.models import Instance, Study
from tests.factories import DepartmentFactory

from .hostile_dicom import TEST_FILES, frames_claim, hostile_set

# The hostile files carry UIDs that are paths on purpose; pydicom says so.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Invalid value for VR UI:UserWarning:pydicom"
)

ROOT = Path(__file__).resolve().parents[2]
PEAK_BOUND = 64 * 1024 * 1024  # bytes, Python and numpy allocations together


def _valid(folder, name="valid.dcm", **changes):
    ds = dcmread(TEST_FILES / "CT_small.dcm")
    ds.SOPInstanceUID = generate_uid()
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(folder / name)
    return folder / name


@pytest.mark.django_db
def test_the_hostile_set_imports_with_one_line_per_file_in_bounded_memory(tmp_path):
    files = hostile_set(tmp_path / "in")
    _valid(tmp_path / "in", "zz-valid.dcm")  # after all of them: still imported
    DepartmentFactory(code="rad-a")
    out = StringIO()

    tracemalloc.start()
    try:
        call_command(
            "import_dicom", str(tmp_path / "in"), department="rad-a", stdout=out
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    lines = out.getvalue().splitlines()
    assert lines[0] == (
        f"Imported 1, already present 0, skipped {len(files)} (department rad-a)."
    )
    skipped = [line for line in lines if line.startswith("  skipped ")]
    assert len(skipped) == len(files)
    for name in files:
        assert sum(f"/{name}: " in line for line in skipped) == 1, name
    assert peak < PEAK_BOUND, f"peak {peak / 2**20:.0f} MB"
    assert Instance.objects.count() == 1
    stored = default_storage.listdir("dicom")
    assert stored == ([], [f"{Instance.objects.get().sop_instance_uid}.dcm"])


@pytest.mark.django_db
def test_a_uid_that_is_a_path_creates_no_file_or_folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _valid(folder, "a.dcm", SOPInstanceUID="../../x")
    _valid(folder, "b.dcm", SOPInstanceUID="1.2.3/4.5")
    _valid(folder, "c.dcm")

    summary = import_dicom_paths(paths=[folder], department=DepartmentFactory())

    assert [o.reason for o in summary.skipped] == [
        "invalid SOPInstanceUID (a UID holds only digits and dots)"
    ] * 2
    assert len(summary.imported) == 1
    assert default_storage.listdir("dicom")[0] == []  # no "1.2.3" folder


@pytest.mark.django_db
def test_frames_that_the_pixel_data_cannot_hold_are_refused(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    frames_claim(folder)
    _valid(folder, "fifty.dcm", NumberOfFrames=50)

    summary = import_dicom_paths(paths=[folder], department=DepartmentFactory())

    reasons = sorted(o.reason for o in summary.skipped)
    assert reasons == [
        "NumberOfFrames 2000000 is beyond 100000",
        "NumberOfFrames 50 does not fit the pixel data (32768 bytes for 1638400)",
    ]


@pytest.mark.django_db
def test_a_normal_deflated_file_is_imported(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(TEST_FILES / "image_dfl.dcm", folder)

    summary = import_dicom_paths(paths=[folder], department=DepartmentFactory())

    assert summary.skipped == []
    assert len(summary.imported) == 1
    assert Instance.objects.get().rows == 512


@pytest.mark.django_db
def test_a_study_uid_with_another_patient_id_is_refused_not_merged(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    study_uid = generate_uid()
    _valid(folder, "a.dcm", StudyInstanceUID=study_uid, PatientID="P-1")
    _valid(
        folder,
        "b.dcm",
        StudyInstanceUID=study_uid,
        PatientID="P-2",
        PatientName="Other^Patient",
    )

    summary = import_dicom_paths(paths=[folder], department=DepartmentFactory())

    assert len(summary.imported) == 1
    (skipped,) = summary.skipped
    assert skipped.path.name == "b.dcm"
    assert skipped.reason == (
        f"study {study_uid} holds another patient (Patient ID differs)"
    )
    study = Study.objects.get()
    assert study.patient.patient_id == "P-1"
    assert Instance.objects.filter(series__study=study).count() == 1


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory):
    """A migrated SQLite file that two import processes can share."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "REDIS_URL": ""}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    code = (
        "from recipients.models import Department;"
        "Department.objects.create(name='A', code='rad-a')"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    return path


def test_two_imports_at_once_neither_crash_nor_leave_a_file_without_its_row(
    tmp_path, migrated_sqlite
):
    database = tmp_path / "db.sqlite3"
    shutil.copy(migrated_sqlite, database)
    folder = tmp_path / "in"
    folder.mkdir()
    study_uid = generate_uid()
    for n in range(40):
        _valid(folder, f"{n:02d}.dcm", StudyInstanceUID=study_uid)
    media = tmp_path / "media"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "",
        "MEDIA_ROOT": str(media),
    }
    command = [sys.executable, "manage.py", "import_dicom", str(folder)]
    imports = [
        subprocess.Popen(
            [*command, "--department", "rad-a"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(p.wait(180), *p.communicate()) for p in imports]

    for code, stdout, stderr in results:
        assert code == 0, stderr
        assert "database is locked" not in stdout + stderr
        assert "skipped 0" in stdout
    rows = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from studies.models import Instance;"
            "print(sorted(i.file.name for i in Instance.objects.all()))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stored = sorted(f"dicom/{p.name}" for p in (media / "dicom").iterdir())
    assert len(stored) == 40
    assert rows.strip().splitlines()[-1] == str(stored)


def test_pixel_data_kept_deferred_for_the_check():
    # The check reads element headers: the sample's pixel data stays on disk.
    ds = pydicom.dcmread(TEST_FILES / "CT_small.dcm", defer_size=1024)
    assert ds.get_item(0x7FE00010, keep_deferred=True).value is None
