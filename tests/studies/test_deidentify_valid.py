"""De-identified objects stay valid: dicom3tools' dciodvfy finds no new error.

Every pydicom test file that the import would take (a SOP instance, no
DICOMDIR, one that dciodvfy can read whole) is de-identified and checked; an
error counts when the original did not have it (UIDs aside, which change).
The SRs the project writes (the message, plain and anonymized) have none.
"""

import datetime
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pydicom.data
import pytest
from django.conf import settings

from studies.deidentify import CONTENT_SEQUENCE, Deidentifier
from studies.message_sr import message_sr_build

DICOMDIR = "1.2.840.10008.1.3.10"
PSEUDONYM = SimpleNamespace(
    given_name="4821", family_name="Anonymous", pseudo_patient_id="ANON-4821"
)


@pytest.fixture(scope="module")
def dciodvfy():
    path = shutil.which("dciodvfy")
    if path is None:
        reason = "dciodvfy is not installed (apt-get install -y dicom3tools)"
        if settings.PACSSHARE_REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _errors(tool, path):
    result = subprocess.run(  # noqa: S603 - our own file paths
        [tool, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = (result.stdout + result.stderr).splitlines()
    # UIDs are replaced: compare the errors without them.
    return {
        re.sub(r"(UID\s*|<)[0-9.]+", r"\1<uid>", " ".join(line.split()))
        for line in lines
        if line.startswith("Error")
    }


def _checked(tool, source, out_dir):
    try:
        ds = pydicom.dcmread(source)
    except Exception:  # noqa: BLE001 - not a file the import would take
        return None
    if "SOPInstanceUID" not in ds or ds.get("SOPClassUID", DICOMDIR) == DICOMDIR:
        return None
    before = _errors(tool, source)
    if any("read failed" in error for error in before):
        return None  # dciodvfy cannot read the original whole: no baseline
    Deidentifier(salt="s", pseudonym=PSEUDONYM).apply(ds)
    target = out_dir / f"{abs(hash(str(source)))}.dcm"
    ds.save_as(target, enforce_file_format=True)
    return source.name, sorted(_errors(tool, target) - before)


# Some shipped files are broken on purpose (badVR, a wrong VR, a long UID).
@pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning:pydicom")
@pytest.mark.filterwarnings("ignore:Expected explicit VR:UserWarning:pydicom")
def test_every_pydicom_file_stays_as_valid_as_it_was(dciodvfy, tmp_path):
    files = sorted(
        p for p in Path(pydicom.data.DATA_ROOT, "test_files").rglob("*") if p.is_file()
    )
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 2) * 2)) as pool:
        results = [
            r
            for r in pool.map(lambda p: _checked(dciodvfy, p, tmp_path), files)
            if r is not None
        ]

    assert len(results) > 130  # the shipped files, SR, SEG, RT and ECG among them
    assert {name: new for name, new in results if new} == {}


def _study():
    patient = SimpleNamespace(
        family_name="Peeters",
        given_name="Jan",
        patient_id="PID-1",
        birth_date=datetime.date(1970, 5, 17),
        sex="M",
    )
    return SimpleNamespace(
        study_instance_uid=pydicom.uid.generate_uid(),
        patient=patient,
        study_date=datetime.date(2024, 1, 2),
        study_time=datetime.time(10, 30),
        accession_number="ACC-1",
        description="CT thorax",
    )


@pytest.mark.parametrize("anonymized", [False, True])
def test_the_message_sr_has_no_error(dciodvfy, tmp_path, anonymized):
    ds = message_sr_build(
        study=_study(),
        text="Slice 12, please — merci",
        sender=SimpleNamespace(
            title="Dr.", first_name="Sofie", last_name="Claes", username="sofie"
        ),
        pseudonym=PSEUDONYM if anonymized else None,
        uid_seed=7,
    )
    if anonymized:
        Deidentifier(salt="s", pseudonym=PSEUDONYM).remap_uids(ds)
    path = tmp_path / "message.dcm"
    ds.save_as(path, enforce_file_format=True)

    assert _errors(dciodvfy, path) == set()
    if anonymized:
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethod
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"


def _concept(item):
    names = item.get("ConceptNameCodeSequence") or [{}]
    return str(names[0].get("CodeMeaning", "")), item.get("ValueType")


def _content_items(ds):
    for item in ds.get(CONTENT_SEQUENCE, []):
        yield item
        yield from _content_items(item)


def test_a_structured_report_keeps_its_findings_but_names_no_one():
    source = Path(pydicom.data.DATA_ROOT, "test_files", "test-SR.dcm")
    original = pydicom.dcmread(source)
    ds = Deidentifier(salt="s", pseudonym=PSEUDONYM).apply(pydicom.dcmread(source))

    before = list(_content_items(original))
    after = list(_content_items(ds))
    assert len(after) == len(before) > 10
    assert [_concept(i) for i in after] == [_concept(i) for i in before]
    measured = [
        str(i.MeasuredValueSequence[0].NumericValue)
        for i in after
        if i.get("ValueType") == "NUM" and i.get("MeasuredValueSequence")
    ]
    assert measured == [
        str(i.MeasuredValueSequence[0].NumericValue)
        for i in before
        if i.get("ValueType") == "NUM" and i.get("MeasuredValueSequence")
    ]
    names = {str(e.value) for e in original.iterall() if e.VR == "PN" and e.value}
    texts = {str(i.TextValue) for i in before if i.get("ValueType") == "TEXT"}
    left = {str(e.value) for e in ds.iterall() if e.VR != "SQ"}
    assert names and not names & left
    assert texts and not texts & left
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == [
        "113100",
        "113104",
    ]
