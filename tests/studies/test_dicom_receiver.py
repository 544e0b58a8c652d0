"""The DICOM receiver against dcmtk's echoscu/storescu and Orthanc's C-STORE.

The receiver (studies/dicomnet/receiver.py) runs in threads of the test process
on a free loopback port; the peers are the real programs. What a user would
notice: an unknown AE title is turned away, every pydicom storage file arrives
and its study is on the department's overview, a bad file fails alone with
its reason, a repeat stores nothing twice, Orthanc's push lands, and parallel
senders all get through.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.urls import reverse
from pydicom.uid import generate_uid
from pynetdicom import AE, AllStoragePresentationContexts, _config

from studies.dicom_import import import_dicom_paths
from studies.dicomnet.receiver import Receiver
from studies.models import DicomCaller, IncomingAssociation, Instance, Study
from tests.dicom_peers import running_orthanc, storescu_config
from tests.factories import DepartmentFactory, StudyFactory, UserFactory
from tests.fixtures_services import free_port

pytestmark = [pytest.mark.dicom_peers, pytest.mark.django_db(transaction=True)]

TEST_FILES = Path(pydicom.data.DATA_ROOT, "test_files")
STORAGE_CLASSES = {c.abstract_syntax for c in AllStoragePresentationContexts}
OVERVIEW = reverse("studies:overview")


def storage_test_files():
    """Return every pydicom test file with file meta and a storage SOP class."""
    files, skipped = [], {}
    for path in sorted(TEST_FILES.glob("*.dcm")):
        try:
            meta = pydicom.filereader.read_file_meta_info(path)
        except Exception as error:  # noqa: BLE001 - any unreadable meta is a skip
            skipped[path.name] = f"no file meta ({type(error).__name__})"
            continue
        sop_class = str(meta.get("MediaStorageSOPClassUID", ""))
        if not sop_class or not meta.get("TransferSyntaxUID"):
            skipped[path.name] = "incomplete file meta"
        elif sop_class not in STORAGE_CLASSES:
            skipped[path.name] = f"not a storage SOP class ({sop_class})"
        else:
            files.append(path)
    return files, skipped


@pytest.fixture
def world(settings):
    settings.OVERVIEW_PAGE_SIZE = 500
    department = DepartmentFactory(code="rad-a", name="Radiology A")
    other = DepartmentFactory(code="rad-b", name="Radiology B")
    DicomCaller.objects.create(department=department, ae_title="STORESCU")
    DicomCaller.objects.create(
        department=department, ae_title="ORTHANC", host="127.0.0.1"
    )
    # Bound to another host: no caller from here may use it.
    DicomCaller.objects.create(department=other, ae_title="FARAWAY", host="10.9.9.9")
    member = UserFactory(username="member-a", departments=[department])
    return SimpleNamespace(department=department, other=other, member=member)


@pytest.fixture
def receiver(world):
    server = Receiver(ae_title="PACSSHARE", host="127.0.0.1", port=0)
    _, port = server.start()
    yield SimpleNamespace(port=port, server=server)
    server.stop(grace=10)


def echoscu(port, *args):
    return subprocess.run(
        ["echoscu", "-aec", "PACSSHARE", *args, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def storescu(port, files, *, aet="STORESCU", config=None):
    """Send files on one association, each in its own transfer syntax."""
    if config is None:
        config = storescu_config(files, Path(tempfile.mkstemp(suffix=".cfg")[1]))
    return subprocess.run(
        ["storescu", "-v", "-nh", "-aet", aet, "-aec", "PACSSHARE"]
        + ["--config-file", str(config), "AsTheyAre"]
        + ["127.0.0.1", str(port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=300,
    )


def sent_files(output):
    """Return the files storescu sent (it skips those it cannot read itself)."""
    return [
        Path(m)
        for m in re.findall(
            r"^I: Sending file: (.+)\n(?:[WI]: .*\n)*?I: Sending Store Request",
            output,
            re.MULTILINE,
        )
    ]


def storescu_sendable(files, folder):
    """Return the files storescu can send, by sending them to dcmtk's storescp."""
    port = free_port()
    sink = subprocess.Popen(
        ["storescp", "+xa", "--ignore", "-od", str(folder), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(
            ["echoscu", "-q", "127.0.0.1", str(port)], stderr=subprocess.DEVNULL
        ).returncode:
            assert time.monotonic() < deadline, "storescp did not start"
            time.sleep(0.1)
        result = storescu(port, files)
    finally:
        sink.terminate()
        sink.wait(10)
    sendable = set(sent_files(result.stdout + result.stderr))
    return [f for f in files if f in sendable]


def expected_outcomes(files, department):
    """What `import_dicom` makes of these files, measured and rolled back."""

    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            summary = import_dicom_paths(paths=files, department=department)
            raise Rollback
    except Rollback:
        pass
    return summary


def last_association(**filters):
    """Return the latest association, once the receiver has closed its record."""
    deadline = time.monotonic() + 20
    while IncomingAssociation.objects.filter(ended_at=None).exists():
        assert time.monotonic() < deadline, "an association never ended"
        time.sleep(0.05)
    return IncomingAssociation.objects.filter(**filters).latest("id")


def test_it_answers_an_echo_and_rejects_an_unknown_ae_title(receiver, world):
    known = echoscu(receiver.port, "-aet", "STORESCU")
    unknown = echoscu(receiver.port, "-aet", "UNKNOWN")
    elsewhere = echoscu(receiver.port, "-aet", "FARAWAY")

    assert known.returncode == 0, known.stderr
    assert unknown.returncode != 0
    assert "Association Rejected" in unknown.stderr + unknown.stdout
    assert "Calling AE Title Not Recognized" in unknown.stderr + unknown.stdout
    assert elsewhere.returncode != 0
    rejected = IncomingAssociation.objects.filter(accepted=False).order_by("id")
    assert [(r.calling_ae_title, r.department) for r in rejected] == [
        ("UNKNOWN", None),
        ("FARAWAY", None),
    ]
    assert rejected[0].host == "127.0.0.1" and rejected[0].ended_at is not None
    echo = last_association(accepted=True)
    assert echo.calling_ae_title == "STORESCU"
    assert echo.called_ae_title == "PACSSHARE"
    assert echo.department == world.department
    assert (echo.stored, echo.already_present, echo.refused) == (0, 0, 0)
    assert echo.ended_at is not None


def _hostile_files(folder, world):
    """A bad UID, a frame count the pixels cannot hold, another department's study."""
    folder.mkdir()
    foreign = StudyFactory(patient__department=world.other)

    def sample(name, target, **changes):
        ds = pydicom.dcmread(TEST_FILES / name)
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            setattr(ds, keyword, generate_uid())
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / target, enforce_file_format=True)
        return folder / target

    return [
        sample("CT_small.dcm", "bad-uid.dcm", SOPInstanceUID="1.2.840.99.abc"),
        sample("MR_small.dcm", "frames.dcm", NumberOfFrames=5000),
        sample(
            "CT_small.dcm", "foreign.dcm", StudyInstanceUID=foreign.study_instance_uid
        ),
    ]


# The hostile files are meant to be invalid; pydicom warns as it reads them.
@pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")
def test_it_stores_every_pydicom_storage_file_and_a_bad_file_fails_alone(
    client, receiver, world, tmp_path
):
    files, skipped = storage_test_files()
    hostile = _hostile_files(tmp_path / "hostile", world)
    # The bad files sit between good ones on the same association.
    sendable = storescu_sendable(files, tmp_path)
    sent = sendable[:10] + hostile + sendable[10:]
    expected = expected_outcomes(sent, world.department)

    result = storescu(receiver.port, sent)

    assert len(files) > 60, skipped
    assert len(sendable) > 55
    assert sent_files(result.stdout + result.stderr) == sent
    record = last_association(calling_ae_title="STORESCU")
    assert record.accepted and record.department == world.department
    assert record.stored == len(expected.imported) > 30
    assert record.already_present == len(expected.already_present)
    assert record.refused == len(expected.skipped) >= 3
    assert record.stored + record.already_present + record.refused == len(sent)
    reasons = {r["reason"] for r in record.reasons}
    assert reasons == {o.reason for o in expected.skipped}
    assert any("invalid SOPInstanceUID" in r for r in reasons)
    assert any("NumberOfFrames 5000 does not fit" in r for r in reasons)
    assert any("belongs to another department" in r for r in reasons)
    # storescu was told, file by file: the failures carry the import's reason.
    output = result.stdout + result.stderr
    assert output.count("Received Store Response (Success)") == (
        record.stored + record.already_present
    ), output[-3000:]
    assert output.count("Received Store Response (Error: CannotUnderstand)") == (
        record.refused
    )
    stored_uids = set(
        Instance.objects.filter(series__study__department=world.department).values_list(
            "sop_instance_uid", flat=True
        )
    )
    assert stored_uids == {
        pydicom.dcmread(o.path, stop_before_pixels=True).SOPInstanceUID
        for o in expected.imported
    }
    # Compressed files arrived in their own transfer syntax.
    compressed = Instance.objects.filter(
        sop_instance_uid=pydicom.dcmread(
            TEST_FILES / "JPEG2000.dcm", stop_before_pixels=True
        ).SOPInstanceUID
    ).get()
    with compressed.file.open("rb") as handle:
        assert pydicom.dcmread(handle).file_meta.TransferSyntaxUID == (
            "1.2.840.10008.1.2.4.91"
        )
    # The studies are on the department's overview.
    client.force_login(world.member)
    page = client.get(OVERVIEW).content.decode()
    studies = Study.objects.filter(department=world.department)
    assert studies.count() > 20
    for study in studies:
        assert reverse("studies:study", args=[study.pk]) in page


def test_it_stores_nothing_twice(receiver, world, tmp_path):
    files, _ = storage_test_files()
    files = storescu_sendable(files[:25], tmp_path)
    sent = storescu(receiver.port, files)
    assert sent.returncode == 0, sent.stdout[-3000:] + sent.stderr[-3000:]
    first = last_association(calling_ae_title="STORESCU")
    instances = Instance.objects.count()

    again = storescu(receiver.port, files)

    second = last_association(calling_ae_title="STORESCU")
    assert second.pk != first.pk
    assert again.returncode == 0, again.stderr[-2000:]
    assert Instance.objects.count() == instances
    assert second.stored == 0, first.reasons
    assert second.already_present == first.stored + first.already_present
    assert second.refused == first.refused


def test_it_takes_a_study_orthanc_pushes(receiver, world, tmp_path):
    modalities = {"PACSSHARE": ["PACSSHARE", "127.0.0.1", receiver.port]}
    with running_orthanc(tmp_path / "orthanc", modalities=modalities) as orthanc:
        uploaded = [
            orthanc.upload(TEST_FILES / name)
            for name in ("CT_small.dcm", "MR_small.dcm")
        ]
        ct_study = uploaded[0]["ParentStudy"]
        # One study by its id, and one instance by its id.
        orthanc.post("/modalities/PACSSHARE/store", {"Resources": [ct_study]})
        orthanc.post("/modalities/PACSSHARE/store", [uploaded[1]["ID"]])
        sent = orthanc.instance_uids()

    stored = set(Instance.objects.values_list("sop_instance_uid", flat=True))
    assert stored == sent
    records = IncomingAssociation.objects.filter(calling_ae_title="ORTHANC")
    assert [r.stored for r in records.order_by("id")] == [1, 1]
    assert all(r.department == world.department for r in records)
    for name in ("CT_small.dcm", "MR_small.dcm"):
        study_uid = pydicom.dcmread(TEST_FILES / name).StudyInstanceUID
        assert Study.objects.get(study_instance_uid=study_uid).department == (
            world.department
        )


@pytest.mark.postgres  # SQLite takes one writer at a time
def test_it_stores_from_several_senders_at_once(receiver, world, tmp_path):
    source = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    batches = []
    for sender in range(3):
        folder = tmp_path / f"sender-{sender}"
        folder.mkdir()
        study, series = generate_uid(), generate_uid()
        for number in range(20):
            source.StudyInstanceUID, source.SeriesInstanceUID = study, series
            source.SOPInstanceUID = generate_uid()
            source.InstanceNumber = number + 1
            source.PatientID = f"PARALLEL-{sender}"
            source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
            source.save_as(folder / f"{number}.dcm", enforce_file_format=True)
        batches.append(sorted(folder.iterdir()))
    results = [None] * 3

    def send(index):
        results[index] = storescu(receiver.port, batches[index])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)

    assert all(r is not None and r.returncode == 0 for r in results)
    last_association()  # every record closed
    records = IncomingAssociation.objects.filter(calling_ae_title="STORESCU")
    assert sorted(r.stored for r in records) == [20, 20, 20]
    # They overlapped in time: several associations at once.
    spans = sorted((r.started_at, r.ended_at) for r in records)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
    assert Study.objects.filter(department=world.department).count() == 3
    assert Instance.objects.count() == 60
    assert all(
        s.instance_count == 20 and s.series_count == 1
        for s in Study.objects.filter(department=world.department)
    )
    assert set(Study.objects.values_list("patient__patient_id", flat=True)) == {
        "PARALLEL-0",
        "PARALLEL-1",
        "PARALLEL-2",
    }


# The hostile files are meant to be invalid; pydicom warns as it reads them.
@pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")
def test_it_answers_a_refused_file_with_its_reason(receiver, world, tmp_path):
    """The files storescu cannot read itself, sent as they are by pynetdicom."""
    files, _ = storage_test_files()
    sendable = set(storescu_sendable(files, tmp_path))
    unsendable = [f for f in files if f not in sendable]
    hostile = _hostile_files(tmp_path / "hostile", world)
    expected = expected_outcomes(unsendable + hostile, world.department)
    ae = AE(ae_title="STORESCU")
    for path in unsendable + hostile:
        meta = pydicom.filereader.read_file_meta_info(path)
        ae.add_requested_context(meta.MediaStorageSOPClassUID, [meta.TransferSyntaxUID])
    answers = []

    _config.STORE_SEND_CHUNKED_DATASET = True  # the bytes as they are
    try:
        assoc = ae.associate("127.0.0.1", receiver.port, ae_title="PACSSHARE")
        assert assoc.is_established
        for path in unsendable + hostile:
            answers.append(assoc.send_c_store(path))
        assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = False

    assert len(unsendable) >= 3
    record = last_association(calling_ae_title="STORESCU")
    assert record.stored + record.already_present + record.refused == len(answers)
    assert record.stored == len(expected.imported)
    assert record.refused == len(expected.skipped)
    for answer, outcome in zip(answers, expected.outcomes, strict=True):
        if outcome.outcome == "skipped":
            assert answer.Status == 0xC000
            assert answer.ErrorComment == outcome.reason[:64].rstrip()
        else:
            assert answer.Status == 0x0000
    assert answers[-3].ErrorComment.startswith("invalid SOPInstanceUID")


def test_it_turns_callers_away_for_now_while_the_database_is_down(
    receiver, world, monkeypatch
):
    def down(**kwargs):
        raise OperationalError("the database is restarting")

    monkeypatch.setattr("studies.dicomnet.receiver.caller_for", down)

    result = echoscu(receiver.port, "-aet", "STORESCU")

    assert result.returncode != 0
    assert "Rejected Transient" in result.stderr + result.stdout


@pytest.mark.postgres  # the command's own process reaches the test database
def test_the_command_listens_and_stops_cleanly_on_sigterm(world, tmp_path):
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}"
        f":{db['PORT'] or 5432}/{db['NAME']}"
    )
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, MEDIA_ROOT=str(tmp_path / "media"))
    process = subprocess.Popen(
        [sys.executable, "manage.py", "dicom_listen", "--port", str(port)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while echoscu(port, "-aet", "STORESCU").returncode:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.2)
        stored = storescu(port, [TEST_FILES / "CT_small.dcm"])
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)

    assert stored.returncode == 0
    assert process.returncode == 0
    assert f"listening on 127.0.0.1:{port}" in output
    assert "DICOM receiver stopped." in output
    assert Instance.objects.filter(series__study__department=world.department).count()
