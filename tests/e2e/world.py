"""The people, studies and helpers the browser stories share.

One sending department with a sender and its admin, two recipients (one found by
quick search, one a favorite of the sender), a label, and two studies whose
images are real DICOM files (pydicom's CT_small and MR_small) with reports.
"""

import datetime
import json
from types import SimpleNamespace

from django.urls import reverse
from django.utils import timezone

from recipients.models import Favorite
from sharing.models import Label
from sharing.wizard.services import ShareRecipient, share_create
from studies.models import Report
from tests.factories import (
    DepartmentFactory,
    MembershipFactory,
    PatientFactory,
    PhysicianNumberFactory,
    SeriesFactory,
    StudyFactory,
    UserFactory,
)
from tests.studies.viewer_helpers import instance_create, study_file_bytes

PASSWORD = "pw-for-tests-1"
REPORT_TEXT = "No pulmonary embolism. Nodule of 4 mm in the left lower lobe."


def _study(*, department, family, given, description, modality, dicom_file):
    patient = PatientFactory(
        department=department,
        family_name=family,
        given_name=given,
        birth_date=datetime.date(1970, 5, 17),
    )
    study = StudyFactory(
        patient=patient,
        description=description,
        modalities=modality,
        study_date=timezone.localdate() - datetime.timedelta(days=2),
    )
    series = SeriesFactory(
        study=study, modality=modality, series_number=1, description="Axial"
    )
    for number in (1, 2):
        data = study_file_bytes(dicom_file, study=study, series=series)
        instance_create(series=series, data=data, number=number)
    Report.objects.create(study=study, text=REPORT_TEXT)
    return study


def build_world():
    department = DepartmentFactory(
        name="Radiology Alpha", code="alpha", max_recipients=3
    )
    sender = MembershipFactory(
        department=department,
        user__username="dr-sender",
        user__title="Dr.",
        user__first_name="Sofie",
        user__last_name="Claes",
    ).user
    admin = MembershipFactory(
        department=department,
        is_admin=True,
        user__username="admin-alpha",
        user__first_name="Anne",
        user__last_name="Admin",
    ).user
    recipient = UserFactory(
        username="dr-recipient",
        title="Dr.",
        first_name="Lucas",
        last_name="Maes",
        email="lucas.maes@example.org",
        mobile="+32475112233",
        language="en",
    )
    PhysicianNumberFactory(user=recipient, scheme="RIZIV", number="1-23456-78-901")
    favorite = UserFactory(
        username="dr-favorite",
        title="Dr.",
        first_name="Emma",
        last_name="Willems",
        email="emma.willems@example.org",
        mobile="+32475445566",
        language="en",
    )
    Favorite.objects.create(owner=sender, user=favorite)
    outsider = UserFactory(username="dr-outsider", first_name="Olaf", last_name="Out")
    label = Label.objects.create(department=department, name="Oncology")
    ct = _study(
        department=department,
        family="Peeters",
        given="Jan",
        description="CT thorax",
        modality="CT",
        dicom_file="CT_small.dcm",
    )
    mr = _study(
        department=department,
        family="Janssens",
        given="Marie",
        description="MR brain",
        modality="MR",
        dicom_file="MR_small.dcm",
    )
    return SimpleNamespace(
        department=department,
        sender=sender,
        admin=admin,
        recipient=recipient,
        favorite=favorite,
        outsider=outsider,
        label=label,
        ct=ct,
        mr=mr,
    )


def share(world, *, studies, recipient=None, **overrides):
    """Share through the real service (it queues the mail after commit)."""
    recipient = recipient or world.recipient
    options = {
        "require_otp": True,
        "send_mail": True,
        **overrides.pop("recipient_options", {}),
    }
    parameters = {
        "access": "write",
        "reason": "Second opinion before the tumour board",
        "language": "en",
        "valid_until": timezone.localdate() + datetime.timedelta(days=10),
        "patient_agreed": True,
        "label": None,
        "label_scope": "",
        "urgent": False,
        "anonymize": False,
        "allow_further_sharing": False,
        "message": "",
        **overrides,
    }
    return share_create(
        sender=world.sender,
        studies=studies,
        recipients=[ShareRecipient(kind="user", pk=recipient.pk, **options)],
        **parameters,
    )


def log_in(page, base_url, username, *, next_url=None):
    """Log in through the login form (optionally from a page that asked for it)."""
    if next_url is None:
        page.goto(base_url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]:has-text('Log in')")
    page.wait_for_load_state()


def log_out(page):
    page.click("form.logout-form button")
    page.wait_for_load_state()


def watch_console(page):
    """Collect script errors, CSP reports and failed images/scripts/styles.

    A refusal page answers 403 or 404 on purpose, so failed documents do not
    count; a failed sub-resource (a frame, a stylesheet) does.
    """
    problems = []

    def on_console(msg):
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(msg.text)

    def on_response(response):
        if response.status >= 400 and response.request.resource_type != "document":
            problems.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def image_loaded(page, selector="img.viewer-image"):
    """Return whether the <img> finished loading a real picture."""
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel);"
        " return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
        timeout=15000,
    )
    return page.eval_on_selector(selector, "img => img.naturalWidth") > 0


def body_text(page):
    return page.inner_text("body")


def dump(value):
    return json.dumps(value, indent=2, default=str)
