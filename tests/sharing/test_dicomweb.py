"""A bucket's DICOMweb root read by dicomweb-client over HTTP, as a viewer would."""

import datetime
import io
import json

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from sharing.access.guard import SESSION_VERIFIED_KEY
from sharing.models import AuditEvent
from studies.models import Instance
from tests.factories import UserFactory, add_images, viewer_bucket

pytestmark = pytest.mark.django_db(transaction=True)

STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"


def root_of(bucket):
    return reverse("sharing:dicomweb_studies", kwargs={"bucket_id": bucket.pk})[
        : -len("/studies")
    ]


def http_session(user, *, verified=()):
    """Return a requests.Session logged in as ``user`` (SMS code of ``verified``)."""
    client = Client()
    client.force_login(user)
    if verified:
        session = client.session
        session[SESSION_VERIFIED_KEY] = [str(b.pk) for b in verified]
        session.save()
    http = requests.Session()
    http.cookies.set(
        settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
    )
    return http


def dicomweb_for(live_server, bucket, http):
    return DICOMwebClient(url=live_server.url + root_of(bucket), session=http)


def uid(item, tag):
    return item[tag]["Value"][0]


def multipart_bodies(response):
    """Split a multipart/related response into its parts' bodies."""
    content_type = response.headers["Content-Type"]
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"')
    parts = response.content.split(b"--" + boundary.encode())
    bodies = []
    for part in parts[1:-1]:
        _headers, _, body = part.partition(b"\r\n\r\n")
        bodies.append(body[: -len(b"\r\n")])
    assert parts[-1].startswith(b"--")
    return bodies


def stored_files(study):
    instances = Instance.objects.filter(series__study=study)
    result = {}
    for instance in instances:
        with instance.file.open("rb") as fh:
            result[instance.sop_instance_uid] = fh.read()
    return result


def test_it_lists_exactly_the_buckets_studies_series_and_instances(live_server):
    bucket = viewer_bucket()
    user = bucket.recipient_user
    study = bucket.share.studies.get()
    # Another share of the same department to the same user: never listed here.
    other = viewer_bucket(department=bucket.share.source_department, recipient=user)
    other_study = other.share.studies.get()
    http = http_session(user)
    client = dicomweb_for(live_server, bucket, http)

    studies = client.search_for_studies()
    series = client.search_for_series(study.study_instance_uid)
    instances = client.search_for_instances(study.study_instance_uid)
    everything = client.search_for_instances()
    all_series = client.search_for_series()

    assert [uid(s, STUDY_UID) for s in studies] == [study.study_instance_uid]
    assert studies[0]["00100010"]["Value"][0]["Alphabetic"] == "Peeters^Jan"
    assert studies[0]["00201208"]["Value"] == [3]
    assert sorted(uid(s, SERIES_UID) for s in series) == sorted(
        study.series.values_list("series_instance_uid", flat=True)
    )
    expected = set(stored_files(study))
    assert {uid(i, SOP_UID) for i in instances} == expected
    assert {uid(i, SOP_UID) for i in everything} == expected
    assert len(all_series) == 2
    assert client.search_for_studies(search_filters={"PatientID": "nobody"}) == []
    assert client.search_for_studies(
        search_filters={"StudyInstanceUID": study.study_instance_uid}
    )
    assert len(client.search_for_instances(limit=1, offset=1)) == 1
    # The other bucket's study is not in this root, not even by its UID.
    assert (
        client.search_for_studies(
            search_filters={"StudyInstanceUID": other_study.study_instance_uid}
        )
        == []
    )
    response = http.get(
        f"{live_server.url}{root_of(bucket)}"
        f"/studies/{other_study.study_instance_uid}/series"
    )
    assert response.status_code == 404


def test_it_retrieves_every_instance_byte_equal_and_audits_once(live_server):
    bucket = viewer_bucket()
    study = bucket.share.studies.get()
    http = http_session(bucket.recipient_user)
    root = live_server.url + root_of(bucket)

    response = http.get(
        f"{root}/studies/{study.study_instance_uid}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
    )
    again = http.get(f"{root}/studies/{study.study_instance_uid}")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(
        'multipart/related; type="application/dicom"'
    )
    assert sorted(multipart_bodies(response)) == sorted(stored_files(study).values())
    assert again.status_code == 200
    events = AuditEvent.objects.filter(action=AuditEvent.Action.DICOMWEB_RETRIEVED)
    assert events.count() == 1
    event = events.get()
    assert event.bucket == bucket and event.actor == bucket.recipient_user
    assert event.study_uids == [study.study_instance_uid]


def test_it_serves_instance_metadata_frames_and_rendered(live_server):
    bucket = viewer_bucket()
    study = bucket.share.studies.get()
    client = dicomweb_for(live_server, bucket, http_session(bucket.recipient_user))
    ct = study.series.get(modality="CT")
    instance = ct.instances.first()
    ds = pydicom.dcmread(instance.file.open("rb"))
    uids = (study.study_instance_uid, ct.series_instance_uid, instance.sop_instance_uid)

    retrieved = client.retrieve_study(study.study_instance_uid)
    metadata = client.retrieve_study_metadata(study.study_instance_uid)
    series_metadata = client.retrieve_series_metadata(*uids[:2])
    frames = client.retrieve_instance_frames(*uids, frame_numbers=[1])
    rendered = client.retrieve_instance_rendered(*uids, media_types=("image/png",))

    assert {str(d.SOPInstanceUID) for d in retrieved} == set(stored_files(study))
    assert len(metadata) == 3 and len(series_metadata) == 2
    one = next(m for m in metadata if uid(m, SOP_UID) == instance.sop_instance_uid)
    assert one["00100010"]["Value"][0]["Alphabetic"] == "Peeters^Jan"
    assert "7FE00010" not in one
    assert one["00280010"]["Value"] == [ds.Rows]
    assert frames == [ds.PixelData]
    image = Image.open(io.BytesIO(rendered))
    assert image.size == (ds.Columns, ds.Rows)


def test_an_anonymized_bucket_never_sends_an_original_value(live_server):
    bucket = viewer_bucket(anonymize=True)
    study = bucket.share.studies.get()
    patient = study.patient
    http = http_session(bucket.recipient_user)
    client = dicomweb_for(live_server, bucket, http)
    root = live_server.url + root_of(bucket)
    originals = [
        b"Peeters",
        patient.patient_id.encode(),
        b"19700517",
        b"ACC-5521",
        b"Sint-Jan",
        b"Janssens",
        study.study_instance_uid.encode(),
        *(
            s.encode()
            for s in study.series.values_list("series_instance_uid", flat=True)
        ),
        *(uid.encode() for uid in stored_files(study)),
    ]

    studies = client.search_for_studies()
    shown_study = uid(studies[0], STUDY_UID)
    series = client.search_for_series(shown_study)
    instances = client.search_for_instances(shown_study)
    bodies = [json.dumps(studies).encode(), json.dumps(series).encode()]
    bodies.append(json.dumps(instances).encode())
    bodies.append(http.get(f"{root}/studies/{shown_study}").content)
    bodies.append(http.get(f"{root}/studies/{shown_study}/metadata").content)
    for item in instances:
        path = f"{root}/studies/{shown_study}/series/{uid(item, SERIES_UID)}"
        path += f"/instances/{uid(item, SOP_UID)}"
        bodies.append(http.get(path).content)
        bodies.append(http.get(path + "/metadata").content)

    assert shown_study != study.study_instance_uid and len(instances) == 3
    for body in bodies:
        for value in originals:
            assert value not in body, value
    retrieved = client.retrieve_study(shown_study)
    assert {str(d.SOPInstanceUID) for d in retrieved} == {
        uid(i, SOP_UID) for i in instances
    }
    assert {str(d.PatientName) for d in retrieved} == {
        studies[0]["00100010"]["Value"][0]["Alphabetic"]
    }
    # The original UID is unknown here.
    assert http.get(f"{root}/studies/{study.study_instance_uid}").status_code == 404


def test_an_anonymized_bucket_leaves_out_what_its_download_leaves_out(live_server):
    bucket = viewer_bucket(anonymize=True)
    study = bucket.share.studies.get()
    Instance.objects.filter(series__modality="MR").update(burned_in_annotation="YES")
    client = dicomweb_for(live_server, bucket, http_session(bucket.recipient_user))

    shown_study = uid(client.search_for_studies()[0], STUDY_UID)
    instances = client.search_for_instances(shown_study)
    series = client.search_for_series(shown_study)
    retrieved = client.retrieve_study(shown_study)

    assert len(instances) == 2 and len(series) == 1 and len(retrieved) == 2
    assert {d.Modality for d in retrieved} == {"CT"}
    assert study.series.count() == 2


def _expire(bucket):
    bucket.share.valid_until = timezone.localdate() - datetime.timedelta(days=3)
    bucket.share.save()


def _revoke(bucket):
    bucket.revoked_at = timezone.now()
    bucket.save()


def _lock(bucket):
    bucket.locked_at = timezone.now()
    bucket.failed_otp_attempts = 5
    bucket.save()


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("anonymous", 401),
        ("another_user", 404),
        ("code_not_entered", 403),
        ("revoked", 403),
        ("expired", 403),
        ("locked", 403),
    ],
)
def test_a_refused_request_gets_no_data(live_server, case, status):
    bucket = viewer_bucket(require_otp=case == "code_not_entered")
    study = bucket.share.studies.get()
    user = bucket.recipient_user
    if case == "anonymous":
        http = requests.Session()
    elif case == "another_user":
        http = http_session(UserFactory())
    else:
        http = http_session(user)
    {"revoked": _revoke, "expired": _expire, "locked": _lock}.get(case, lambda b: None)(
        bucket
    )
    root = live_server.url + root_of(bucket)
    ct = study.series.get(modality="CT")
    instance = ct.instances.first()
    paths = [
        "/studies",
        "/series",
        "/instances",
        f"/studies/{study.study_instance_uid}",
        f"/studies/{study.study_instance_uid}/metadata",
        f"/studies/{study.study_instance_uid}/series",
        f"/studies/{study.study_instance_uid}/series/{ct.series_instance_uid}"
        f"/instances/{instance.sop_instance_uid}/frames/1",
        f"/studies/{study.study_instance_uid}/series/{ct.series_instance_uid}"
        f"/instances/{instance.sop_instance_uid}/rendered",
    ]

    responses = [http.get(root + path, allow_redirects=False) for path in paths]

    for path, response in zip(paths, responses, strict=True):
        assert response.status_code == status, path
        assert response.content == b"", path
    assert not AuditEvent.objects.filter(
        action=AuditEvent.Action.DICOMWEB_RETRIEVED
    ).exists()


def test_the_code_entered_in_this_session_opens_the_root(live_server):
    bucket = viewer_bucket(require_otp=True)
    client = dicomweb_for(
        live_server, bucket, http_session(bucket.recipient_user, verified=[bucket])
    )

    studies = client.search_for_studies()

    assert [uid(s, STUDY_UID) for s in studies] == [
        bucket.share.studies.get().study_instance_uid
    ]


def test_a_compressed_frame_comes_as_stored_or_decoded_as_asked(live_server):
    bucket = viewer_bucket()
    study = bucket.share.studies.get()
    mr = study.series.get(modality="MR")
    add_images(mr, "MR_small_RLE.dcm")
    instance = mr.instances.order_by("-pk").first()
    ds = pydicom.dcmread(instance.file.open("rb"))
    http = http_session(bucket.recipient_user)
    url = (
        f"{live_server.url}{root_of(bucket)}/studies/{study.study_instance_uid}"
        f"/series/{mr.series_instance_uid}/instances/{instance.sop_instance_uid}"
        "/frames/1"
    )

    stored = http.get(
        url,
        headers={
            "Accept": "multipart/related; type=application/octet-stream; "
            "transfer-syntax=*"
        },
    )
    decoded = http.get(
        url, headers={"Accept": 'multipart/related; type="application/octet-stream"'}
    )

    fragment = pydicom.encaps.get_frame(ds.PixelData, 0, number_of_frames=1)
    assert multipart_bodies(stored) == [fragment]
    assert f"transfer-syntax={ds.file_meta.TransferSyntaxUID}" in stored.text[:300]
    assert multipart_bodies(decoded) == [ds.pixel_array.astype("<i2").tobytes()]
