"""The DICOM import: real pydicom files in, patients/studies/series/instances out."""

import datetime
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pydicom import dcmread
from pydicom.uid import generate_uid

from studies.dicom_import import (
    import_dicom_paths,
    parse_dicom_date,
    parse_dicom_time,
    parse_person_name,
)
from studies.models import Instance, Patient, Series, Study
from tests.factories import TEST_FILES, DepartmentFactory

pytestmark = pytest.mark.django_db


def copy_sample(name, folder):
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(TEST_FILES / name, folder / name))


def write_dicom(path, *, source="CT_small.dcm", **keywords):
    """Write a copy of a pydicom sample with new UIDs unless given, and changes."""
    dataset = dcmread(TEST_FILES / source)
    keywords.setdefault("SOPInstanceUID", generate_uid())
    for keyword, value in keywords.items():
        setattr(dataset, keyword, value)
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """A folder for the files to import (MEDIA_ROOT is tmp_path/media)."""
    path = tmp_path / "in"
    path.mkdir()
    return path


def stored_files():
    return (
        sorted(default_storage.listdir("dicom")[1])
        if default_storage.exists("dicom")
        else []
    )


def test_it_imports_real_pydicom_files(folder):
    department = DepartmentFactory(code="rad-a")
    copy_sample("CT_small.dcm", folder)
    copy_sample("MR_small.dcm", folder / "sub")

    summary = import_dicom_paths(paths=[folder], department=department)

    assert len(summary.imported) == 2
    assert summary.skipped == []
    ct = dcmread(TEST_FILES / "CT_small.dcm", stop_before_pixels=True)
    study = Study.objects.get(study_instance_uid=ct.StudyInstanceUID)
    assert study.department == department
    assert study.study_date == datetime.date(2004, 1, 19)
    assert study.study_time == datetime.time(7, 27, 30)
    assert study.institution_name == "JFK IMAGING CENTER"
    assert study.modalities == "CT"
    assert (study.patient.family_name, study.patient.given_name) == (
        "CompressedSamples",
        "CT1",
    )
    assert study.patient.patient_id == "1CT1"
    assert study.series.count() == 1
    series = study.series.get()
    assert series.series_instance_uid == ct.SeriesInstanceUID
    assert series.modality == "CT"
    instance = series.instances.get()
    assert instance.sop_instance_uid == ct.SOPInstanceUID
    assert instance.sop_class_uid == ct.SOPClassUID
    assert (instance.rows, instance.columns, instance.number_of_frames) == (128, 128, 1)
    assert instance.has_pixels
    with instance.file.open("rb") as handle:
        assert dcmread(handle).SOPInstanceUID == ct.SOPInstanceUID
    mr = Study.objects.get(patient__patient_id="4MR1")
    assert mr.modalities == "MR"
    assert mr.patient.given_name == "MR1"


def test_it_counts_series_and_instances_and_keeps_modalities(folder):
    department = DepartmentFactory(code="rad-a")
    study_uid, ct_series, mr_series = generate_uid(), generate_uid(), generate_uid()
    common = {"StudyInstanceUID": study_uid, "PatientID": "P-1"}
    for n in range(3):
        write_dicom(
            folder / f"ct{n}.dcm",
            SeriesInstanceUID=ct_series,
            InstanceNumber=n + 1,
            **common,
        )
    write_dicom(
        folder / "mr.dcm",
        source="MR_small.dcm",
        SeriesInstanceUID=mr_series,
        **common,
    )

    import_dicom_paths(paths=[folder], department=department)

    study = Study.objects.get(study_instance_uid=study_uid)
    assert study.modalities == "CT,MR"
    assert study.series.count() == 2
    assert Instance.objects.filter(series__study=study).count() == 4
    ct = Series.objects.get(series_instance_uid=ct_series)
    assert list(ct.instances.values_list("instance_number", flat=True)) == [1, 2, 3]
    assert Patient.objects.filter(department=department).count() == 1


def test_it_parses_accented_names_and_dicom_values(folder):
    department = DepartmentFactory(code="rad-a")
    write_dicom(
        folder / "a.dcm",
        SpecificCharacterSet="ISO_IR 192",
        PatientName="Van den Broeck^Noël^Marie",
        PatientID="BE-42",
        PatientBirthDate="19520229",
        PatientSex="F",
        StudyDescription="CT thorax — contrôle",
        ReferringPhysicianName="Müller^Léa^^Dr.",
        StudyDate="20260314",
        StudyTime="0915",
    )

    import_dicom_paths(paths=[folder / "a.dcm"], department=department)

    patient = Patient.objects.get(patient_id="BE-42")
    assert (patient.family_name, patient.given_name) == ("Van den Broeck", "Noël Marie")
    assert patient.birth_date == datetime.date(1952, 2, 29)
    assert patient.sex == "F"
    study = patient.studies.get()
    assert study.description == "CT thorax — contrôle"
    assert study.referring_physician == "Dr. Léa Müller"
    assert study.study_date == datetime.date(2026, 3, 14)
    assert study.study_time == datetime.time(9, 15)


def test_it_parses_the_dicom_value_formats():
    assert parse_person_name("De Smet^Jan") == ("De Smet", "Jan")
    assert parse_person_name("Anonymized") == ("Anonymized", "")
    assert parse_person_name("") == ("", "")
    assert parse_dicom_date("1997.04.24") == datetime.date(1997, 4, 24)
    assert parse_dicom_date("20261399") is None
    assert parse_dicom_date("") is None
    assert parse_dicom_time("072730.123") == datetime.time(7, 27, 30, 123000)
    assert parse_dicom_time("10:52:20") == datetime.time(10, 52, 20)
    assert parse_dicom_time("nonsense") is None


def test_it_is_idempotent_by_uids(folder):
    department = DepartmentFactory(code="rad-a")
    copy_sample("CT_small.dcm", folder)
    copy_sample("MR_small.dcm", folder)
    import_dicom_paths(paths=[folder], department=department)
    counts = [m.objects.count() for m in (Patient, Study, Series, Instance)]
    files = stored_files()

    again = import_dicom_paths(paths=[folder], department=department)

    assert len(again.imported) == 0
    assert len(again.already_present) == 2
    assert again.skipped == []
    assert [m.objects.count() for m in (Patient, Study, Series, Instance)] == counts
    assert stored_files() == files


def test_it_reports_and_skips_bad_files_without_crashing(folder):
    department = DepartmentFactory(code="rad-a")
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    (folder / "notes.txt").write_text("Not an image, just a note.\n")
    (folder / "cut_pixels.dcm").write_bytes(data[:20000])
    (folder / "cut_header.dcm").write_bytes(data[:600])
    copy_sample("MR_truncated.dcm", folder)
    write_dicom(folder / "good.dcm", source="MR_small.dcm")

    summary = import_dicom_paths(
        paths=[folder, folder / "missing.dcm"], department=department
    )

    reasons = {o.path.name: o.reason for o in summary.skipped}
    assert reasons["notes.txt"] == "not a DICOM file"
    assert "truncated" in reasons["cut_pixels.dcm"]
    assert reasons["cut_header.dcm"].startswith("missing")
    assert "truncated" in reasons["MR_truncated.dcm"]
    assert reasons["missing.dcm"] == "no such file or folder"
    assert [o.path.name for o in summary.imported] == ["good.dcm"]
    assert Instance.objects.count() == 1
    assert len(stored_files()) == 1


def test_it_skips_a_study_of_another_department(folder):
    first = DepartmentFactory(code="rad-a")
    second = DepartmentFactory(code="rad-b")
    copy_sample("CT_small.dcm", folder)
    import_dicom_paths(paths=[folder], department=first)

    summary = import_dicom_paths(paths=[folder], department=second)

    assert summary.imported == []
    [skipped] = summary.skipped
    assert "belongs to another department" in skipped.reason
    # Which department holds it is not said to the importing one.
    assert "rad-a" not in skipped.reason
    assert not Study.objects.filter(department=second).exists()
    assert not Patient.objects.filter(department=second).exists()


def test_it_imports_a_folder_with_a_few_queries_per_file(folder):
    department = DepartmentFactory(code="rad-a")
    study_uid, series_uid = generate_uid(), generate_uid()
    for n in range(30):
        subfolder = folder / ("small" if n < 10 else "large")
        write_dicom(
            subfolder / f"{n}.dcm",
            StudyInstanceUID=study_uid,
            SeriesInstanceUID=series_uid,
        )
    import_dicom_paths(paths=[folder / "small"], department=department)
    with CaptureQueriesContext(connection) as small:
        import_dicom_paths(paths=[folder / "small"], department=department)
    with CaptureQueriesContext(connection) as large:
        summary = import_dicom_paths(paths=[folder / "large"], department=department)

    assert len(summary.imported) == 20
    # Re-reading ten known files costs the same few lookups as any chunk.
    assert len(small.captured_queries) <= 5
    # New files: a savepoint, the insert, the study's kept image count and the
    # release; nothing per file else.
    assert len(large.captured_queries) <= 5 + 4 * 20


def test_it_shows_progress_and_a_summary(folder):
    DepartmentFactory(code="rad-a")
    copy_sample("CT_small.dcm", folder)
    copy_sample("MR_small.dcm", folder)
    (folder / "readme.txt").write_text("hello")
    out, err = StringIO(), StringIO()

    call_command(
        "import_dicom", str(folder), department="rad-a", stdout=out, stderr=err
    )

    progress = err.getvalue().splitlines()
    assert progress[0].startswith("[1/3] ")
    assert progress[-1].startswith("[3/3] ")
    assert "readme.txt - skipped: not a DICOM file" in err.getvalue()
    output = out.getvalue()
    assert "Imported 2, already present 0, skipped 1" in output
    assert f"skipped {folder / 'readme.txt'}: not a DICOM file" in output

    out = StringIO()
    call_command(
        "import_dicom", str(folder), department="rad-a", stdout=out, stderr=err
    )
    assert "Imported 0, already present 2, skipped 1" in out.getvalue()


def test_it_refuses_an_unknown_department(folder):
    DepartmentFactory(code="rad-a")
    copy_sample("CT_small.dcm", folder)

    with pytest.raises(CommandError, match='Unknown department "nope".*rad-a'):
        call_command("import_dicom", str(folder), department="nope")

    assert not Study.objects.exists()


def test_it_keeps_the_studys_series_and_image_counts(folder):
    department = DepartmentFactory(code="rad-a")
    study_uid, first, second = generate_uid(), generate_uid(), generate_uid()
    for n in range(5):
        write_dicom(
            folder / f"{n}.dcm",
            StudyInstanceUID=study_uid,
            SeriesInstanceUID=first if n < 3 else second,
        )

    import_dicom_paths(paths=[folder], department=department)
    import_dicom_paths(paths=[folder], department=department)

    study = Study.objects.get(study_instance_uid=study_uid)
    assert (study.series_count, study.instance_count) == (2, 5)
