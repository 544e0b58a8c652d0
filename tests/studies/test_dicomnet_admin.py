"""Django admin of the DICOMweb source and the DICOM destination: scoped to the
admin's departments; the source's password never shown back nor logged."""

import logging
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from studies.models import DicomDestination, DicomWebImport, DicomWebSource
from tests.factories import build_admin_world

pytestmark = pytest.mark.django_db

PASSWORD = "Very-s3cret-PACS"


@pytest.fixture
def world():
    return build_admin_world()


def _source_form(department, **changes):
    return {
        "department": department.pk,
        "base_url": "https://pacs.alpha.example/dicom-web",
        "username": "pacsshare",
        "password": PASSWORD,
        **changes,
    }


def test_an_admin_sets_the_source_and_never_sees_the_password_again(
    client, world, caplog
):
    client.force_login(world.admin_a)
    add_url = reverse("admin:studies_dicomwebsource_add")
    with caplog.at_level(logging.DEBUG):
        created = client.post(add_url, _source_form(world.dept_a))
        assert created.status_code == 302
        source = DicomWebSource.objects.get()
        change_url = reverse("admin:studies_dicomwebsource_change", args=[source.pk])
        change_page = client.get(change_url).content.decode()
        listing = client.get(reverse("admin:studies_dicomwebsource_changelist"))
        # Saved with the password left empty: the stored one stays.
        kept = client.post(change_url, _source_form(world.dept_a, password=""))
    assert source.password == PASSWORD
    assert 'type="password"' in change_page
    assert kept.status_code == 302
    source.refresh_from_db()
    assert source.password == PASSWORD
    for text in (change_page, listing.content.decode(), caplog.text):
        assert PASSWORD not in text
    assert not any(PASSWORD in e.change_message for e in LogEntry.objects.all())
    # Removed only when asked.
    client.post(
        change_url, _source_form(world.dept_a, password="", clear_password="on")
    )
    source.refresh_from_db()
    assert source.password == ""


def test_the_password_rests_sealed_in_the_database(client, world, settings):
    client.force_login(world.admin_a)
    client.post(reverse("admin:studies_dicomwebsource_add"), _source_form(world.dept_a))

    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM studies_dicomwebsource")
        (stored,) = cursor.fetchone()
    # A database dump gives nothing back; the app reads it in clear.
    assert PASSWORD not in stored and stored.startswith("sealed:v1:")
    assert DicomWebSource.objects.get().password == PASSWORD
    # After a SECRET_KEY rotation (the old key a fallback) it still opens.
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    assert DicomWebSource.objects.get().password == PASSWORD
    # Without the old key nothing opens it: the admin is asked for it again.
    settings.SECRET_KEY_FALLBACKS = []
    assert DicomWebSource.objects.get().password == ""


def test_credentials_in_the_url_are_refused(client, world):
    client.force_login(world.admin_a)
    response = client.post(
        reverse("admin:studies_dicomwebsource_add"),
        _source_form(world.dept_a, base_url="https://u:pw@pacs.example/dicom-web"),
    )
    assert response.status_code == 200
    assert "not in the URL" in response.content.decode()
    assert not DicomWebSource.objects.exists()


def test_another_departments_source_and_destination_stay_hidden(client, world):
    source = DicomWebSource.objects.create(
        department=world.dept_b, base_url="https://pacs.beta.example/dicom-web"
    )
    destination = DicomDestination.objects.create(
        department=world.dept_b, ae_title="BETAPACS", host="10.0.0.5", port=104
    )
    client.force_login(world.admin_a)
    for model, obj in (("dicomwebsource", source), ("dicomdestination", destination)):
        listing = client.get(reverse(f"admin:studies_{model}_changelist"))
        assert list(listing.context["cl"].result_list) == []
        change = client.get(reverse(f"admin:studies_{model}_change", args=[obj.pk]))
        assert change.status_code in (302, 403, 404)
    refused = client.post(
        reverse("admin:studies_dicomdestination_add"),
        {"department": world.dept_b.pk, "ae_title": "MINE", "host": "x", "port": 104},
    )
    assert refused.status_code == 200
    assert DicomDestination.objects.count() == 1


def test_an_admin_names_their_departments_destination(client, world):
    client.force_login(world.admin_a)
    add_url = reverse("admin:studies_dicomdestination_add")
    bad = client.post(
        add_url,
        {"department": world.dept_a.pk, "ae_title": "A\\B", "host": "h", "port": 0},
    )
    assert bad.status_code == 200
    good = client.post(
        add_url,
        {
            "department": world.dept_a.pk,
            "ae_title": "ALPHAPACS",
            "host": "pacs.alpha.example",
            "port": 104,
        },
    )
    assert good.status_code == 302
    assert DicomDestination.objects.get().department == world.dept_a


def test_the_bring_in_list_tells_an_interrupted_one_from_a_running_one(client, world):
    def bring_in(uid, **fields):
        return DicomWebImport.objects.create(
            department=world.dept_a,
            user=world.sender_a,
            study_instance_uid=uid,
            status=DicomWebImport.Status.RUNNING,
            **fields,
        )

    soon = timezone.now() + timedelta(minutes=5)
    bring_in("1.2.3.1", leased_until=soon, attempts=1, patient_name="Running^Row")
    bring_in(
        "1.2.3.2",
        leased_until=timezone.now() - timedelta(minutes=5),
        attempts=1,
        patient_name="Stalled^Row",
    )
    client.force_login(world.admin_a)
    page = client.get(reverse("admin:studies_dicomwebimport_changelist"))
    rows = {
        row.split("</tr>")[0]
        for row in page.content.decode().split("<tr")
        if "^Row" in row
    }
    running = next(r for r in rows if "Running" in r)
    stalled = next(r for r in rows if "Stalled" in r)
    assert "bringing in" in running and "interrupted" not in running
    assert "interrupted (resuming)" in stalled
