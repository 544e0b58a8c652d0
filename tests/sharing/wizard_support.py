"""Helpers for the share wizard tests: the wizard's real POSTs; its world, as fixtures.

The wizard is a NamedUrlSessionWizardView named ShareWizard: its management
field is ``share_wizard-current_step`` and each field posts as ``<step>-<field>``;
the recipients step is a formset (``recipients-TOTAL_FORMS``, ``recipients-0-key``).
"""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing.models import Bucket, Notification, Pseudonym, Share
from tests.factories import build_wizard_world

MANAGEMENT = "share_wizard-current_step"


def step_url(step):
    return reverse("sharing:share_step", kwargs={"step": step})


def post_step(client, step, data):
    """Post one step as the browser does: prefixed fields plus the management field."""
    payload = {MANAGEMENT: step}
    for name, value in data.items():
        payload[name if name.startswith(f"{step}-") else f"{step}-{name}"] = value
    return client.post(step_url(step), payload)


def start(client, studies):
    query = "&".join(f"studies={study.pk}" for study in studies)
    return client.get(f"{reverse('sharing:share_start')}?{query}")


def studies_data(studies):
    return {"studies": [str(study.pk) for study in studies]}


def recipients_data(rows):
    """Return the formset fields for rows of (key, require_otp, send_mail, star)."""
    data = {
        "recipients-TOTAL_FORMS": str(len(rows)),
        "recipients-INITIAL_FORMS": "0",
        "recipients-MIN_NUM_FORMS": "0",
        "recipients-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        key, require_otp, send_mail, star = (list(row) + [False, False, False])[:4]
        data[f"recipients-{index}-key"] = key
        if require_otp:
            data[f"recipients-{index}-require_otp"] = "on"
        if send_mail:
            data[f"recipients-{index}-send_mail"] = "on"
        if star:
            data[f"recipients-{index}-star"] = "on"
    return data


def parameters_data(**overrides):
    """Return a valid parameters step; override or drop (value None) any field."""
    data = {
        "access": "read",
        "reason": "Second opinion on the nodule",
        "language": "en",
        "valid_until": in_days(7),
        "patient_agreed": "on",
        "message": "",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def in_days(days):
    """Return the date `days` from today (Brussels) as the form wants it."""
    return (timezone.localdate() + datetime.timedelta(days=days)).strftime("%d/%m/%Y")


def key(obj):
    kind = {"User": "user", "UserGroup": "group", "Department": "department"}[
        type(obj).__name__
    ]
    return f"{kind}:{obj.pk}"


def run_until_parameters(client, studies, rows):
    """Start the wizard and pass the studies and recipients steps; assert each."""
    response = start(client, studies)
    assert response.status_code == 302
    response = post_step(client, "studies", studies_data(studies))
    assert response.status_code == 302, _errors(response)
    assert response.url == step_url("recipients")
    response = post_step(client, "recipients", recipients_data(rows))
    assert response.status_code == 302, _errors(response)
    assert response.url == step_url("parameters")
    return response


def _errors(response):
    context = getattr(response, "context", None)
    if not context or "form" not in context:
        return response.status_code
    form = context["form"]
    return getattr(form, "errors", None), getattr(form, "non_form_errors", list)()


def nothing_created():
    return (
        Share.objects.count() == 0
        and Bucket.objects.count() == 0
        and Pseudonym.objects.count() == 0
        and Notification.objects.count() == 0
    )


@pytest.fixture
def world(db):
    return build_wizard_world()


@pytest.fixture
def sender_client(client, world):
    client.force_login(world.sender)
    return client
