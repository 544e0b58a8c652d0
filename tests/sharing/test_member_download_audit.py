"""A department member's download is audited like a recipient's."""

import pytest
from django.urls import reverse

from sharing.models import AuditEvent
from tests.factories import (
    DepartmentFactory,
    SeriesFactory,
    StudyFactory,
    UserFactory,
    add_images,
)

pytestmark = pytest.mark.django_db


def test_it_audits_a_members_download_once(client):
    department = DepartmentFactory()
    member = UserFactory(departments=[department])
    study = StudyFactory(patient__department=department)
    series = SeriesFactory(study=study)
    add_images(series, "CT_small.dcm")
    client.force_login(member)

    response = client.get(reverse("studies:download", args=[study.pk]))
    b"".join(response.streaming_content)

    event = AuditEvent.objects.get()
    assert event.action == AuditEvent.Action.DOWNLOADED
    assert (event.actor, event.department) == (member, department)
    assert event.study_uids == [study.study_instance_uid]
