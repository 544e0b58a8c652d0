"""`manage.py seed_demo`: a demo a person can log into, loaded the same every time."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from demo.data import DEMO_PASSWORD
from recipients.models import (
    SERVICE_DESK_GROUP,
    Department,
    Favorite,
    Membership,
    PhysicianNumber,
    User,
    UserGroup,
)
from sharing.models import Label
from studies.models import Instance, Patient, Report, ReportRevision, Series, Study

pytestmark = pytest.mark.django_db

MODELS = [
    Department,
    User,
    Membership,
    PhysicianNumber,
    UserGroup,
    Favorite,
    Label,
    Group,
    Patient,
    Study,
    Series,
    Instance,
    Report,
    ReportRevision,
]


def seed():
    out = StringIO()
    call_command("seed_demo", allow_without_debug=True, stdout=out, stderr=StringIO())
    return out.getvalue()


def snapshot():
    return {
        "counts": {model.__name__: model.objects.count() for model in MODELS},
        "users": list(
            User.objects.order_by("username").values_list(
                "username", "password", "email", "mobile", "language", "is_staff"
            )
        ),
        "studies": list(
            Study.objects.order_by("study_instance_uid").values_list(
                "study_instance_uid", "department__code", "modalities", "report__text"
            )
        ),
        "files": sorted(Instance.objects.values_list("file", flat=True)),
        "permissions": sorted(
            Group.objects.values_list("name", "permissions__codename")
        ),
    }


def test_it_changes_nothing_when_run_twice():
    seed()
    first = snapshot()

    seed()

    assert snapshot() == first
    assert first["counts"]["User"] >= 30


def test_it_prints_the_demo_logins_and_they_work():
    output = seed()

    assert f"password of every one: {DEMO_PASSWORD}" in output
    lines = output.splitlines()
    for username, role, department in [
        ("admin", "superuser", "-"),
        ("sophie.dubois", "clinician", "rad-brussels"),
        ("jan.desmet", "clinician", "rad-gent"),
        ("lea.lambert", "clinician", "rad-liege"),
        ("marc.vandenbroeck", "department admin", "rad-brussels"),
        ("servicedesk", "service desk", "-"),
    ]:
        [line] = [line for line in lines if line.startswith(f"{username} ")]
        assert role in line
        assert line.endswith(department)
        assert User.objects.get(username=username).check_password(DEMO_PASSWORD)

    assert User.objects.get(username="admin").is_superuser
    admin = User.objects.get(username="marc.vandenbroeck")
    assert admin.is_staff
    assert admin.memberships.get().is_admin
    assert admin.has_perm("sharing.change_bucket")
    desk = User.objects.get(username="servicedesk")
    assert desk.is_staff and desk.is_service_desk
    assert desk.groups.filter(name=SERVICE_DESK_GROUP).exists()
    assert desk.has_perm("studies.change_study")
    assert not desk.has_perm("sharing.delete_auditevent")
    clinician = User.objects.get(username="sophie.dubois")
    assert not clinician.is_staff
    assert list(clinician.departments.values_list("code", flat=True)) == [
        "rad-brussels"
    ]


def test_it_seeds_departments_people_groups_and_labels():
    seed()

    gent = Department.objects.get(code="rad-gent")
    assert (gent.default_validity_days, gent.max_validity_days) == (14, 90)
    assert not gent.allow_unlimited
    assert gent.max_recipients == 5
    brussels = Department.objects.get(code="rad-brussels")
    assert brussels.default_validity_days is None
    assert brussels.allow_unlimited
    assert Department.objects.filter(code="rad-liege").exists()
    names = set(User.objects.values_list("last_name", flat=True))
    assert {"Noël", "Müller", "Van den Broeck", "De Smet", "Lefèvre"} <= names
    assert User.objects.filter(first_name__in=["Léa", "Françoise"]).count() == 2
    assert set(User.objects.values_list("language", flat=True)) == {
        "en",
        "nl",
        "fr",
        "de",
    }
    schemes = set(PhysicianNumber.objects.values_list("scheme", flat=True))
    assert {"RIZIV", "BIG", "INSEE"} <= schemes
    assert PhysicianNumber.objects.filter(number="1-23456-78-901").exists()
    assert User.objects.filter(mobile_public=True).exists()
    assert User.objects.filter(mobile_public=False).exclude(mobile="").exists()
    assert User.objects.filter(mobile="").exclude(username="admin").exists()
    assert User.objects.filter(email_public=True).exists()
    assert all(
        mobile.startswith("+") and mobile[1:].isdigit()
        for mobile in User.objects.exclude(mobile="").values_list("mobile", flat=True)
    )
    assert UserGroup.objects.count() == 2
    assert UserGroup.objects.filter(is_public=True).count() == 1
    assert all(group.members.exists() for group in UserGroup.objects.all())
    for department in Department.objects.all():
        assert department.labels.filter(name="Second opinion").exists()


def test_it_imports_real_studies_with_reports():
    seed()

    with_pixels = Instance.objects.filter(has_pixels=True)
    assert with_pixels.count() >= 8
    modalities = set(Study.objects.values_list("modalities", flat=True))
    assert {"CT", "MR"} <= modalities
    brussels = Study.objects.filter(department__code="rad-brussels").count()
    gent = Study.objects.filter(department__code="rad-gent").count()
    assert brussels > gent > 0
    assert Report.objects.count() > Study.objects.count() / 2
    assert ReportRevision.objects.count() == Report.objects.count()
    study = Study.objects.get(description="IRM abdomen — foie")
    assert study.patient.full_name == "Anne-Sophie Dupont"
    assert study.series.count() == 2
    assert Instance.objects.filter(series__study=study).count() == 3
    assert Patient.objects.get(patient_id="BRU-0048213").family_name == "Vermeulen"
    for instance in with_pixels:
        assert instance.file.storage.exists(instance.file.name)


def test_it_refuses_to_run_with_debug_off_unless_asked():
    # pytest-django runs with DEBUG off, like production.
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("seed_demo", stdout=StringIO())

    assert not User.objects.exists()
