"""The study as a ZIP of DICOM files: plain, and de-identified with the message."""

import io
import zipfile
from types import SimpleNamespace

import pydicom
import pytest

from studies.deidentify import deidentification_salt
from studies.download import study_download_response
from studies.message_sr import BASIC_TEXT_SR, message_text
from tests.factories import (
    PatientFactory,
    SeriesFactory,
    StudyFactory,
    UserFactory,
    add_ct_and_mr_images,
)

PSEUDONYM = SimpleNamespace(
    given_name="4821", family_name="Anonymous", pseudo_patient_id="ANON-4821"
)
MESSAGE = "Please compare with the CT of last March."


@pytest.fixture
def study():
    patient = PatientFactory(
        family_name="Vandenbroucke", given_name="Hilde", patient_id="PID-913377"
    )
    study = StudyFactory(
        patient=patient, accession_number="ACC-5521", description="CT thorax"
    )
    ct = SeriesFactory(study=study, series_number=1, modality="CT")
    mr = SeriesFactory(study=study, series_number=2, modality="MR")
    add_ct_and_mr_images(ct=ct, mr=mr)
    return study


def _zip(response):
    body = b"".join(response.streaming_content)
    return zipfile.ZipFile(io.BytesIO(body))


def _original_uids(study):
    uids = {study.study_instance_uid}
    for series in study.series.all():
        uids.add(series.series_instance_uid)
        for instance in series.instances.all():
            with instance.file.open("rb") as fh:
                ds = pydicom.dcmread(fh)
            ds.walk(
                lambda _ds, e: (
                    uids.add(str(e.value))
                    if e.VR == "UI"
                    and e.VM == 1
                    and str(e.value) not in pydicom.uid.UID_dictionary
                    else None
                )
            )
    return uids


@pytest.mark.django_db
def test_it_zips_the_study_files_unchanged_without_patient_names(study):
    response = study_download_response(study=study)

    archive = _zip(response)
    names = archive.namelist()
    assert len(names) == 3
    assert all(name.endswith(".dcm") for name in names)
    assert not any("Vandenbroucke" in name or "Hilde" in name for name in names)
    stored = sorted(
        i.file.open("rb").read() for s in study.series.all() for i in s.instances.all()
    )
    assert sorted(archive.read(name) for name in names) == stored
    assert response["Content-Type"] == "application/zip"
    assert "private" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_de_identified_zip_holds_nothing_of_the_patient_and_the_message(study):
    original_uids = _original_uids(study)
    response = study_download_response(
        study=study,
        pseudonym=PSEUDONYM,
        salt=deidentification_salt("bucket:7"),
        message=MESSAGE,
        message_sender=UserFactory(title="Dr.", first_name="An", last_name="Smet"),
        message_uid_seed="share-7",
    )

    archive = _zip(response)
    datasets = {}
    for name in archive.namelist():
        raw = archive.read(name)
        for secret in (b"Vandenbroucke", b"Hilde", b"PID-913377", b"ACC-5521"):
            assert secret not in raw, (name, secret)
        assert b"19700517" not in raw  # the birth date
        assert b"Sint-Jan" not in raw and b"Janssens" not in raw
        for uid in original_uids:
            assert uid.encode() not in raw, (name, uid)
        datasets[name] = pydicom.dcmread(io.BytesIO(raw))

    assert len(datasets) == 4
    study_uids = {ds.StudyInstanceUID for ds in datasets.values()}
    assert len(study_uids) == 1  # the message stays in the (new) study
    images = [ds for ds in datasets.values() if ds.SOPClassUID != BASIC_TEXT_SR]
    assert len({ds.SeriesInstanceUID for ds in images}) == 2
    assert len({ds.FrameOfReferenceUID for ds in images if ds.Modality == "CT"}) == 1
    for ds in images:
        assert str(ds.PatientName) == "Anonymous^4821"
        assert ds.PatientID == "ANON-4821"
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        private = []
        ds.walk(lambda _d, e, found=private: found.append(e) if e.tag.is_private else 0)
        assert private == []
    (message,) = [ds for ds in datasets.values() if ds.SOPClassUID == BASIC_TEXT_SR]
    assert message_text(message) == MESSAGE
    assert message.SeriesDescription == "Message"
    assert str(message.PatientName) == "Anonymous^4821"
    assert response["Content-Disposition"] == 'attachment; filename="study.zip"'


@pytest.mark.django_db
def test_the_message_instance_keeps_the_patient_in_a_plain_download(study):
    response = study_download_response(study=study, message=MESSAGE)

    archive = _zip(response)
    datasets = [
        pydicom.dcmread(io.BytesIO(archive.read(n))) for n in archive.namelist()
    ]
    (message,) = [ds for ds in datasets if ds.SOPClassUID == BASIC_TEXT_SR]
    assert message.StudyInstanceUID == study.study_instance_uid
    assert str(message.PatientName) == "Vandenbroucke^Hilde"
    assert message.PatientID == "PID-913377"
    assert message_text(message) == MESSAGE


@pytest.mark.django_db
def test_the_same_bucket_gets_the_same_uids_twice(study):
    salt = deidentification_salt("bucket:9")

    def study_uids():
        archive = _zip(
            study_download_response(study=study, pseudonym=PSEUDONYM, salt=salt)
        )
        return {
            pydicom.dcmread(io.BytesIO(archive.read(n))).SOPInstanceUID
            for n in archive.namelist()
        }

    assert study_uids() == study_uids()
